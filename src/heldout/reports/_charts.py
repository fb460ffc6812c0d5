"""The report's charts: matplotlib figures rendered to inline SVG.

Figures are built with the object-oriented API on an Agg canvas and never through
``pyplot``, so making a report neither needs a display nor changes the caller's
matplotlib backend or global figure state. Text stays text in the SVG (smaller, and
searchable in the page); matplotlib escapes it, and math parsing is off so a ``$`` in
a cohort or checkpoint name is just a dollar sign.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import numpy as np
from markupsafe import Markup
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from heldout.store import CohortAggregate

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
NO_CHECKPOINT = "(no checkpoint)"

_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "heldout",  # stable element ids, so a report is reproducible
    "text.parse_math": False,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
}
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^)"]+)')
_MAX_LABEL = 28
"""Longer names are cut in charts (tables show them whole), so the plot keeps its room."""


def label(checkpoint: str | None) -> str:
    """How a checkpoint is named in charts and tables."""
    return NO_CHECKPOINT if checkpoint is None else checkpoint


def _short(text: str) -> str:
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"


def color(position: int) -> str:
    """The colour of the checkpoint at ``position`` in run order, the same in every chart."""
    return PALETTE[position % len(PALETTE)]


def to_svg(figure: Figure, *, chart_id: str, description: str) -> Markup:
    """The figure as an inline ``<svg>`` element.

    Every element id is prefixed with ``chart_id``: matplotlib numbers ids per figure,
    and several figures inline in one page would otherwise share ids (and clip paths).
    """
    buffer = io.StringIO()
    with mpl.rc_context(_RC):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.DOTALL)
    text = _ID.sub(lambda m: f'id="{chart_id}-{m.group(1)}"', text)
    text = _REF.sub(lambda m: f"{m.group(1)}{chart_id}-{m.group(2)}", text)
    aria = Markup('<svg role="img" aria-label="{}" ').format(description)
    # Safe as is: matplotlib escapes every text it writes into the SVG.
    return Markup(text.replace("<svg ", aria, 1))


def _figure(width: float, height: float) -> Figure:
    with mpl.rc_context(_RC):
        figure = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(figure)
    return figure


def _grouped_bars(
    title: str,
    groups: Sequence[str],
    series: Mapping[str | None, Sequence[float | None]],
    *,
    chart_id: str,
    ylabel: str,
) -> Markup:
    """Bars of values in [0, 1]: one group per x label, one bar per checkpoint."""
    with mpl.rc_context(_RC):
        figure = _figure(min(12.0, max(4.5, 1.1 + 0.35 * len(groups) * max(1, len(series)))), 3.0)
        axes = figure.add_subplot()
        width = 0.8 / max(1, len(series))
        x = np.arange(len(groups))
        for position, (checkpoint, values) in enumerate(series.items()):
            heights = [math.nan if v is None else v for v in values]
            offset = (position - (len(series) - 1) / 2) * width
            bars = axes.bar(
                x + offset, heights, width, label=_short(label(checkpoint)), color=color(position)
            )
            axes.bar_label(
                bars, labels=["" if v is None else f"{v:.2f}" for v in values], fontsize=7
            )
        axes.set_xticks(x, [_short(group) for group in groups])
        axes.set_ylim(0, 1.1)
        axes.set_ylabel(ylabel)
        axes.set_title(title, loc="left")
        axes.grid(axis="y", alpha=0.3)
        axes.set_axisbelow(True)
        if len(groups) > 5:
            axes.tick_params(axis="x", labelrotation=25)
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="checkpoint")
        return to_svg(figure, chart_id=chart_id, description=title)


def mean_by_cohort(
    aggregates: Sequence[CohortAggregate],
    checkpoints: Sequence[str | None],
    cohorts: Sequence[str],
    evaluator: str,
    *,
    chart_id: str,
) -> Markup:
    """Grouped bars: the mean ``ok`` score of ``evaluator`` per cohort, one bar per checkpoint."""
    means = {(a.checkpoint, a.cohort): a.mean for a in aggregates if a.evaluator == evaluator}
    series = {cp: [means.get((cp, cohort)) for cohort in cohorts] for cp in checkpoints}
    return _grouped_bars(
        f"{evaluator}: mean score per cohort",
        cohorts,
        series,
        chart_id=chart_id,
        ylabel="mean score (ok scores only)",
    )


def fail_rate_heatmap(
    aggregates: Sequence[CohortAggregate],
    checkpoints: Sequence[str | None],
    *,
    chart_id: str,
) -> Markup:
    """A heatmap of fail rates: one row per (cohort, evaluator), one column per checkpoint.

    Cells without a verdict are grey and marked with a dash.
    """
    # Evaluators without a threshold have no fail rate: they get no row.
    rows = sorted({(a.cohort, a.evaluator) for a in aggregates if a.fail_rate is not None})
    single = len({evaluator for _, evaluator in rows}) == 1
    rates = {(a.cohort, a.evaluator, a.checkpoint): a.fail_rate for a in aggregates}
    grid = np.full((len(rows), len(checkpoints)), np.nan)
    for i, (cohort, evaluator) in enumerate(rows):
        for j, checkpoint in enumerate(checkpoints):
            rate = rates.get((cohort, evaluator, checkpoint))
            if rate is not None:
                grid[i, j] = rate
    with mpl.rc_context(_RC):
        longest = max((len(cohort) + len(ev) for cohort, ev in rows), default=0)
        figure = _figure(
            max(4.0, 2.2 + 1.3 * len(checkpoints) + 0.06 * min(longest, 2 * _MAX_LABEL)),
            max(1.8, 0.9 + 0.38 * len(rows)),
        )
        axes = figure.add_subplot()
        cmap = mpl.colormaps["Reds"].with_extremes(bad="#e5e7eb")
        image = axes.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, aspect="auto")
        for i in range(len(rows)):
            for j in range(len(checkpoints)):
                value = grid[i, j]
                text = "—" if math.isnan(value) else f"{value:.0%}"
                dark = not math.isnan(value) and value > 0.55
                axes.text(j, i, text, ha="center", va="center", color="white" if dark else "black")
        axes.set_xticks(range(len(checkpoints)), [_short(label(c)) for c in checkpoints])
        axes.set_yticks(
            range(len(rows)),
            [
                _short(cohort) if single else f"{_short(cohort)} · {_short(ev)}"
                for cohort, ev in rows
            ],
        )
        axes.tick_params(length=0)
        for side in axes.spines.values():
            side.set_visible(False)
        axes.set_title("Fail rate by cohort and checkpoint", loc="left")
        figure.colorbar(image, ax=axes, shrink=0.8, format="{x:.0%}", label="fail rate")
        return to_svg(figure, chart_id=chart_id, description="Fail rate by cohort and checkpoint")


def axis_means(
    means: Mapping[str, Mapping[str | None, float]],
    checkpoints: Sequence[str | None],
    evaluator: str,
    *,
    chart_id: str,
) -> Markup:
    """Grouped bars: the mean score of each constitutional axis, one bar per checkpoint."""
    axes = list(means)
    series = {cp: [means[axis].get(cp) for axis in axes] for cp in checkpoints}
    return _grouped_bars(
        f"{evaluator}: mean score per constitutional axis",
        axes,
        series,
        chart_id=chart_id,
        ylabel="mean axis score",
    )
