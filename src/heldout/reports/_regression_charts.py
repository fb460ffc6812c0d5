"""The charts of the regression sections: the Pareto front, and metrics against a hyperparameter.

Built like the report's other charts (see ``_charts``): matplotlib's object-oriented API
on an Agg canvas, rendered to inline SVG by :func:`~heldout.reports._charts.to_svg`, so
checkpoint and metric names are escaped by matplotlib and never parsed as math.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib as mpl
import numpy as np
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter
from matplotlib.transforms import ScaledTranslation

from heldout._errors import ConfigError
from heldout.analysis import ALL_COHORTS, MetricRow, RegressionTable, Selection
from heldout.reports._charts import _RC, _figure, _short, color, to_svg

if TYPE_CHECKING:
    from heldout.regress import RegressionResult
    from heldout.sweep import CheckpointConfig

MAX_METRICS_PER_CHART = 4
"""More series than this on one chart and the error bars hide each other."""

_MARKERS = ("o", "s", "D", "^", "v", "P", "X")
_GREY = "#9ca3af"
_FRONT = "#0072B2"
_CHOSEN = "#009E73"
_LOG_SPAN = 100.0
"""Positive values spanning this ratio or more (learning rates) get a log x axis."""


def numeric_params(checkpoints: Sequence[CheckpointConfig]) -> dict[str, dict[str, float]]:
    """Each hyperparameter with a finite number on some checkpoint: checkpoint → value.

    Booleans and strings are left out (they have no scale to chart along), as are the
    checkpoints whose value of that hyperparameter is not a number.
    """
    found: dict[str, dict[str, float]] = {}
    for checkpoint in checkpoints:
        for name, value in checkpoint.params.items():
            # bool is an int subclass, but True is not a point on a beta axis.
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                found.setdefault(name, {})[checkpoint.name] = float(value)
    return found


def metric_rows(table: RegressionTable, metric: str) -> tuple[str, dict[str, MetricRow]]:
    """The rows a chart shows for ``metric``: its cohort and checkpoint → row.

    The pooled rows (cohort ``"*"``) when the metric has them; otherwise the metric
    was seen in one cohort only, and that cohort's rows are its pool.

    Raises:
        ConfigError: No row of the table has this metric.
    """
    rows = [r for r in table.rows if r.metric == metric]
    if not rows:
        available = ", ".join(dict.fromkeys(r.metric for r in table.rows))
        raise ConfigError(f"Unknown metric {metric!r}. Available: {available}")
    cohort = ALL_COHORTS if any(r.cohort == ALL_COHORTS for r in rows) else rows[0].cohort
    return cohort, {r.checkpoint: r for r in rows if r.cohort == cohort}


def cohort_label(cohort: str) -> str:
    """How a cohort is named in charts and headings: the pool is "all cohorts"."""
    return "all cohorts" if cohort == ALL_COHORTS else cohort


def hyperparameter_chart(
    result: RegressionResult,
    param: str,
    metrics: Sequence[str],
    *,
    chart_id: str | None = None,
) -> Markup:
    """Means of ``metrics`` against hyperparameter ``param``, as an inline SVG chart.

    One series per metric: each checkpoint with a numeric ``param`` is a point at its
    mean with its confidence interval as an error bar. The metric's pooled rows are
    used where present, else its single cohort's rows. The baseline's mean of each
    metric is a dashed horizontal line of the series' colour, because the baseline
    usually has no value of the hyperparameter (an SFT model has no DPO beta).

    Args:
        result: The regression result.
        param: A hyperparameter from the checkpoints' ``params``, numeric on at least one.
        metrics: The metrics to draw, any of the table's (a few per chart reads best;
            see ``MAX_METRICS_PER_CHART``).
        chart_id: The prefix of the SVG's element ids, unique in the page (default:
            derived from ``param`` and ``metrics``).

    Returns:
        The chart as inline ``<svg>`` markup.

    Raises:
        ConfigError: ``param`` is not numeric on any checkpoint, ``metrics`` is empty,
            or a metric is not in the table.
    """
    values = numeric_params(result.sweep.checkpoints)
    if param not in values:
        available = ", ".join(values) or "none"
        raise ConfigError(
            f"No checkpoint has a numeric hyperparameter {param!r}. "
            f"Numeric hyperparameters: {available}"
        )
    if not metrics:
        raise ConfigError(f"Name at least one metric to chart against {param!r}")
    series = [_Series(metric, *metric_rows(result.table, metric)) for metric in metrics]
    if chart_id is None:
        digest = hashlib.sha256("\0".join([param, *metrics]).encode()).hexdigest()[:10]
        chart_id = f"rg-hp-{digest}"
    return _draw_hyperparameter(param, values[param], series, result.table.baseline, chart_id)


@dataclass(frozen=True)
class _Series:
    metric: str
    cohort: str
    rows: Mapping[str, MetricRow]


def _draw_hyperparameter(
    param: str, at: Mapping[str, float], series: Sequence[_Series], baseline: str, chart_id: str
) -> Markup:
    with mpl.rc_context(_RC):
        figure = _figure(7.0, 3.6)
        axes = figure.add_subplot()
        xs_all = sorted(set(at.values()))
        spread: list[float] = []
        for i, one in enumerate(series):
            spread += _draw_series(axes, figure, one, at, i, len(series))
            base = one.rows.get(baseline)
            if base is not None and base.mean is not None:
                axes.axhline(base.mean, color=color(i), linestyle="--", linewidth=1, alpha=0.8)
                spread.append(base.mean)
        handles, _ = axes.get_legend_handles_labels()
        handles.append(
            Line2D([], [], color="#4b5563", linestyle="--", label=f"baseline {_short(baseline)}")
        )
        if xs_all[0] > 0 and xs_all[-1] / xs_all[0] >= _LOG_SPAN:
            axes.set_xscale("log")
            # The default labels are mathtext ("$10^{-5}$"), shown raw with math parsing off.
            axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axes.xaxis.set_minor_formatter(NullFormatter())
        axes.autoscale_view(scaley=False)
        if spread:
            low, high = min(spread), max(spread)
            pad = max(0.02, 0.1 * (high - low))
            axes.set_ylim(max(-0.02, low - pad), min(1.02, high + pad))
        axes.set_xlabel(param)
        axes.set_ylabel("mean score (ok scores only)")
        title = f"Metrics against {param}"
        axes.set_title(_short(title), loc="left")
        axes.grid(alpha=0.3)
        axes.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8
        )
        names = ", ".join(s.metric for s in series)
        return to_svg(figure, chart_id=chart_id, description=f"{title}: {names}")


def _draw_series(
    axes: Axes, figure: Figure, one: _Series, at: Mapping[str, float], i: int, k: int
) -> list[float]:
    """One metric's points with error bars; returns the y values it spans."""
    points = sorted(
        (at[cp], row.mean, row) for cp, row in one.rows.items() if cp in at and row.mean is not None
    )
    if not points:
        return []
    xs = [x for x, _, _ in points]
    means = [mean for _, mean, _ in points]
    # Bars can be a hair off the mean after rounding; matplotlib rejects negative ones.
    lows = [max(0.0, mean - _or(row.ci_low, mean)) for _, mean, row in points]
    highs = [max(0.0, _or(row.ci_high, mean) - mean) for _, mean, row in points]
    # Series side by side, a few points apart, so equal means do not hide each other's bars.
    shift = ScaledTranslation((i - (k - 1) / 2) * 4 / 72, 0, figure.dpi_scale_trans)
    joined = len(set(xs)) == len(xs)  # two checkpoints at one x: a line would zig-zag
    axes.errorbar(
        xs,
        means,
        yerr=np.array([lows, highs]),
        fmt=_MARKERS[i % len(_MARKERS)] + ("-" if joined else ""),
        color=color(i),
        capsize=3,
        markersize=5,
        linewidth=1.2,
        transform=axes.transData + shift,
        label=f"{_short(one.metric)} ({cohort_label(one.cohort)})",
    )
    # The shifted transform keeps matplotlib from reading the data limits off the points.
    axes.update_datalim(list(zip(xs, means, strict=True)))
    return [m - lo for m, lo in zip(means, lows, strict=True)] + [
        m + hi for m, hi in zip(means, highs, strict=True)
    ]


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


@dataclass(frozen=True)
class _Point:
    """A checkpoint placed on the Pareto chart."""

    name: str
    capability: float
    alignment: float
    kind: str
    is_baseline: bool


@dataclass(frozen=True)
class _Style:
    marker: str
    size: float
    face: str
    edge: str | None
    """None for unfilled markers ("x"): matplotlib warns about an edge colour there."""


_STYLES = {
    "rejected": _Style("x", 40, _GREY, None),
    "eligible, off the front": _Style("o", 40, "white", _FRONT),
    "on the Pareto front": _Style("o", 45, _FRONT, _FRONT),
    "chosen": _Style("*", 220, _CHOSEN, "#064e3b"),
}
"""Legend label → marker, drawn in this order (the chosen star on top)."""


def pareto_chart(
    selection: Selection, checkpoints: Sequence[str], *, chart_id: str = "rg-pareto"
) -> Markup | None:
    """Alignment (y) against capability (x), one point per checkpoint, as inline SVG.

    The Pareto front is joined by a line, the chosen checkpoint is a star, eligible
    checkpoints off the front are hollow, rejected ones are grey crosses; every point
    is labelled with its checkpoint's name, the baseline's marked as such.

    Args:
        selection: The selection, with each checkpoint's alignment and capability.
        checkpoints: Every checkpoint in sweep order (for a stable drawing order).
        chart_id: The prefix of the SVG's element ids, unique in the page.

    Returns:
        The chart, or None when no checkpoint has both numbers (no guards, so no
        capability, or no ``ok`` scores).
    """
    points = _points(selection, checkpoints)
    if not points:
        return None
    on_front = set(selection.pareto_front)
    with mpl.rc_context(_RC):
        figure = _figure(6.4, 4.2)
        axes = figure.add_subplot()
        # The chosen checkpoint is on the front too: the line runs through the star.
        front = sorted((p.capability, p.alignment) for p in points if p.name in on_front)
        if len(front) > 1:
            axes.plot(*zip(*front, strict=True), color=_FRONT, linewidth=1.2, zorder=1)
        for kind, style in _STYLES.items():
            members = [p for p in points if p.kind == kind]
            if members:
                axes.scatter(
                    [p.capability for p in members],
                    [p.alignment for p in members],
                    marker=style.marker,
                    s=style.size,
                    facecolors=style.face,
                    edgecolors=style.edge,
                    label=kind,
                    zorder=3,
                )
        for p in points:
            axes.annotate(
                _short(p.name) + (" (baseline)" if p.is_baseline else ""),
                (p.capability, p.alignment),
                xytext=(6, 5),
                textcoords="offset points",
                fontsize=8,
                color=_GREY if p.kind == "rejected" else "#1f2937",
            )
        axes.margins(0.18)
        axes.set_xlabel("capability (mean of the guarded rows)")
        axes.set_ylabel("alignment (mean of the objective rows)")
        title = "Alignment against capability per checkpoint"
        axes.set_title(title, loc="left")
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
        return to_svg(figure, chart_id=chart_id, description=title)


def _points(selection: Selection, checkpoints: Sequence[str]) -> list[_Point]:
    """The checkpoints with both an alignment and a capability, in sweep order."""
    order = {name: i for i, name in enumerate(checkpoints)}
    points = []
    for v in sorted(selection.candidates, key=lambda v: order.get(v.checkpoint, len(order))):
        if v.alignment is None or v.capability is None:
            continue
        kind = {"chosen": "chosen", "rejected": "rejected"}.get(v.status)
        if kind is None:
            on_front = v.checkpoint in selection.pareto_front
            kind = "on the Pareto front" if on_front else "eligible, off the front"
        points.append(_Point(v.checkpoint, v.capability, v.alignment, kind, v.is_baseline))
    return points
