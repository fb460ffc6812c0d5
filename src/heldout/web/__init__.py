"""The web layer of ``heldout serve``: the OTLP trace receiver and the dashboard.

:func:`create_app` makes one FastAPI app over a :class:`~heldout.store.Store`. Pages
are rendered on the server with jinja2 (autoescape on, no script, a CSP that forbids
any), aggregate in SQL and read one page of rows at a time.
"""

from heldout.web._app import create_app
from heldout.web._labels import (
    LabelAccuracy,
    SpotCheckLabel,
    label_accuracy,
    labels_of,
    put_label,
    spotcheck_records,
)
from heldout.web._queries import (
    RowLine,
    RunLine,
    TrendPoint,
    fail_rate_trend,
    row_page,
    run_lines,
)

__all__ = [
    "LabelAccuracy",
    "RowLine",
    "RunLine",
    "SpotCheckLabel",
    "TrendPoint",
    "create_app",
    "fail_rate_trend",
    "label_accuracy",
    "labels_of",
    "put_label",
    "row_page",
    "run_lines",
    "spotcheck_records",
]
