"""The dashboard's charts, drawn like the report's: matplotlib to inline SVG, no script."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
from markupsafe import Markup

from heldout.reports._charts import _RC, _figure, _short, color, to_svg
from heldout.web._queries import TrendPoint


def trend_chart(points: Sequence[TrendPoint], *, chart_id: str = "trend") -> Markup | None:
    """Fail rate over time: one line per cohort, one point per run that judged it.

    Returns None when no run has a fail rate to draw.
    """
    series: dict[str, list[TrendPoint]] = defaultdict(list)
    for point in points:
        if point.fail_rate is not None:
            series[point.cohort].append(point)
    if not series:
        return None
    title = "Eval-fail rate by cohort over time"
    with mpl.rc_context(_RC):
        figure = _figure(8.0, 3.2)
        axes = figure.add_subplot()
        for position, (cohort, found) in enumerate(sorted(series.items())):
            axes.plot(
                # Naive UTC: numpy has no time zones, and every point is UTC.
                np.array([p.at.replace(tzinfo=None) for p in found], dtype="datetime64[us]"),
                np.array([p.fail_rate for p in found], dtype=float),
                marker="o",
                markersize=4,
                color=color(position),
                label=_short(cohort),
            )
        axes.set_ylim(-0.02, 1.02)
        axes.set_ylabel("fail rate (ok verdicts)")
        axes.set_title(title, loc="left")
        axes.grid(alpha=0.3)
        axes.yaxis.set_major_formatter("{x:.0%}")
        locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_locator(locator)
        concise = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_formatter(concise)
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="cohort")
        return to_svg(figure, chart_id=chart_id, description=title)
