"""Reports: a run from the store, written as a self-contained HTML page to read and share."""

from heldout.reports._html import Section, render_html_report, write_html_report
from heldout.reports._regression import regression_sections, write_regression_report
from heldout.reports._regression_charts import hyperparameter_chart

__all__ = [
    "Section",
    "hyperparameter_chart",
    "regression_sections",
    "render_html_report",
    "write_html_report",
    "write_regression_report",
]
