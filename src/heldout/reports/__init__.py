"""Reports: a run from the store, written as a self-contained HTML page to read and share."""

from heldout.reports._html import Section, render_html_report, write_html_report

__all__ = ["Section", "render_html_report", "write_html_report"]
