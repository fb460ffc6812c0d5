"""The HTML report of a run: one self-contained file to read, share and archive.

The page needs nothing at view time: CSS is inline, charts are inline SVG, there is
no script. Every text that came from a model, a user or a judge is escaped by jinja2's
autoescape; only the charts (escaped by matplotlib) and extra sections built with
:meth:`Section.from_template` (escaped by the same environment) go in as markup.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from heldout._errors import DataError
from heldout.reports import _charts
from heldout.reports._data import ReportData, axis_scores, collect
from heldout.store import Store

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("heldout.reports", "templates"),
    autoescape=True,  # always on: outputs, inputs and judge reasons are untrusted text
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


_ENV.filters.update(
    number=_number, percent=_percent, when=_when, checkpoint=_charts.label, axes=axis_scores
)


@dataclass(frozen=True)
class Section:
    """An extra section of the report: the extension point for later analyses.

    Sections are placed after the overview tables, in the order given, each with an
    entry in the table of contents. A regression selection (confidence intervals,
    the checkpoint to ship) is meant to arrive this way, without touching this module.

    Attributes:
        title: The section's heading (plain text; escaped).
        body: The section's HTML. A plain ``str`` is escaped and shown as text; only
            :class:`~markupsafe.Markup` goes in as HTML, so build it with
            :meth:`from_template`, which escapes every value it is given.
        anchor: The element id the table of contents links to (default: from the title).
    """

    title: str
    body: Markup | str
    anchor: str = ""

    @classmethod
    def from_template(
        cls, title: str, source: str, /, *, anchor: str = "", **values: Any
    ) -> Section:
        """A section whose body is a jinja2 template rendered with autoescape on.

        Args:
            title: The heading.
            source: The template, e.g. ``"<p>Ship {{ checkpoint }}.</p>"``. The report's
                filters (``number``, ``percent``, ``checkpoint``) are available.
            anchor: The element id (default: from the title).
            values: The template's variables; strings among them are escaped.

        Example:
            >>> Section.from_template("Ship", "<p>{{ cp }}</p>", cp="<b>x</b>").body
            Markup('<p>&lt;b&gt;x&lt;/b&gt;</p>')
        """
        body = Markup(_ENV.from_string(source).render(**values))  # rendered with autoescape
        return cls(title=title, body=body, anchor=anchor)

    @property
    def element_id(self) -> str:
        """The id of the section's element in the page."""
        raw = self.anchor or self.title
        slug = "".join(c if c.isalnum() else "-" for c in raw.lower()).strip("-")
        return f"x-{slug or 'section'}"


def render_html_report(
    store: Store,
    run_id: str,
    *,
    title: str | None = None,
    sections: Sequence[Section] = (),
) -> str:
    """The HTML report of run ``run_id``, as a string; see :func:`write_html_report`."""
    data = collect(store, run_id)
    template = _ENV.get_template("report.html.j2")
    return template.render(
        title=title or f"heldout report: {data.run.name}",
        data=data,
        charts=_charts_of(data),
        sections=list(sections),
        error_limit=_ERROR_LIMIT,
    )


def write_html_report(
    store: Store,
    run_id: str,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    sections: Sequence[Section] = (),
) -> Path:
    """Write the HTML report of run ``run_id`` to ``path``, one self-contained file.

    The report has a header (run, judges, dates, score counts with errors shown
    apart), a table of mean, n, errors and fail rate per cohort, evaluator and
    checkpoint (the best checkpoint of each row highlighted), charts, what each
    checkpoint newly fails and newly passes against the first (the baseline), every
    error, and a collapsible drill-down of every row.

    Args:
        store: The store holding the run.
        run_id: The run.
        path: The file to write; its folder is created if needed.
        title: The page title (default: from the run's name).
        sections: Extra sections, placed after the overview; see :class:`Section`.

    Returns:
        The path written.

    Raises:
        StoreError: There is no such run, or the store cannot be read.
        DataError: The file cannot be written.
    """
    html = render_html_report(store, run_id, title=title, sections=sections)
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8", newline="\n")
    except OSError as exc:
        raise DataError(f"cannot write the report: {exc.strerror}", path=os.fspath(path)) from exc
    return target


_ERROR_LIMIT = 200
"""Errors listed one by one; the rest are counted (each still shows in its row)."""


@dataclass(frozen=True)
class Chart:
    """One chart of the report."""

    title: str
    svg: Markup


def _charts_of(data: ReportData) -> list[Chart]:
    checkpoints = data.checkpoints
    charts = [
        Chart(
            f"Mean score per cohort: {evaluator}",
            _charts.mean_by_cohort(
                data.aggregates, checkpoints, data.cohorts, evaluator, chart_id=f"c{n}"
            ),
        )
        for n, evaluator in enumerate(data.evaluators, start=1)
        if any(a.evaluator == evaluator and a.mean is not None for a in data.aggregates)
    ]
    if any(a.fail_rate is not None for a in data.aggregates):
        charts.append(
            Chart(
                "Fail rate by cohort and checkpoint",
                _charts.fail_rate_heatmap(data.aggregates, checkpoints, chart_id="heat"),
            )
        )
    for n, (evaluator, axes) in enumerate(data.axes.items(), start=1):
        charts.append(
            Chart(
                f"Constitutional axes: {evaluator}",
                _charts.axis_means(axes, checkpoints, evaluator, chart_id=f"axes{n}"),
            )
        )
    return charts
