"""Analysis: the statistics of a regression eval and the choice of the checkpoint to ship.

``regression_table`` turns stored scores into one row per (checkpoint, cohort,
metric) with bootstrap intervals, paired tests against the baseline and a
multiple-comparison correction; ``select_checkpoint`` picks the checkpoint to ship
from that table under an objective and capability guards, with a reason for every
checkpoint it passes over.
"""

from heldout.analysis._axes import axis_metric, axis_results, with_axis_metrics
from heldout.analysis._selection import (
    CheckpointVerdict,
    Guard,
    Objective,
    Selection,
    VerdictStatus,
    select_checkpoint,
)
from heldout.analysis._stats import (
    Correction,
    MeanInterval,
    PairedTest,
    TestMethod,
    adjust_p_values,
    mean_interval,
    paired_test,
)
from heldout.analysis._table import (
    ALL_COHORTS,
    MetricRow,
    RegressionTable,
    RowChange,
    regression_table,
    row_changes,
)

__all__ = [
    "ALL_COHORTS",
    "CheckpointVerdict",
    "Correction",
    "Guard",
    "MeanInterval",
    "MetricRow",
    "Objective",
    "PairedTest",
    "RegressionTable",
    "RowChange",
    "Selection",
    "TestMethod",
    "VerdictStatus",
    "adjust_p_values",
    "axis_metric",
    "axis_results",
    "mean_interval",
    "paired_test",
    "regression_table",
    "row_changes",
    "select_checkpoint",
    "with_axis_metrics",
]
