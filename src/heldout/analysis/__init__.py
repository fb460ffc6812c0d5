"""Analysis: the statistics of a regression eval, the checkpoint to ship, and the judges.

``regression_table`` turns stored scores into one row per (checkpoint, cohort,
metric) with bootstrap intervals, paired tests against the baseline and a
multiple-comparison correction; ``select_checkpoint`` picks the checkpoint to ship
from that table under an objective and capability guards, with a reason for every
checkpoint it passes over. ``position_bias``, ``length_bias`` and ``self_preference``
probe a pairwise judge's preferences for bias. ``judge_agreement`` (disagreement
rate, Cohen's kappa, Krippendorff's alpha, the items judges disagree on),
``judge_overfitting`` (a gain only the training judge sees), ``jury`` (several
judges combined) and ``spotcheck_sample`` / ``spotcheck_score`` (judges against
people) check the judges themselves.
"""

from heldout.analysis._agreement import (
    AgreementEstimate,
    KappaWeights,
    Level,
    alpha_interval,
    cohen_kappa,
    disagreement_rate,
    kappa_interval,
    krippendorff_alpha,
)
from heldout.analysis._agreement_report import (
    AgreementReport,
    AgreementRow,
    Disagreement,
    PairKappa,
    judge_agreement,
    write_disagreements,
)
from heldout.analysis._axes import axis_metric, axis_results, with_axis_metrics
from heldout.analysis._bias import (
    LengthBias,
    PositionBias,
    SelfPreference,
    calibrated_p_a,
    length_bias,
    model_family,
    position_bias,
    self_preference,
)
from heldout.analysis._jury import JuryMethod, JuryResult, JuryVerdict, jury
from heldout.analysis._overfit import (
    CheckpointOverfit,
    OverfitReport,
    OverfitRow,
    OverfitStatus,
    judge_overfitting,
    overfitting_from_scores,
    scores_from_verdicts,
    training_judge_sweep,
)
from heldout.analysis._selection import (
    CheckpointVerdict,
    Guard,
    Objective,
    Selection,
    VerdictStatus,
    select_checkpoint,
)
from heldout.analysis._spotcheck import (
    JudgeAccuracy,
    SpotCheckItem,
    SpotCheckReport,
    SpotCheckSample,
    Stratum,
    spotcheck_sample,
    spotcheck_score,
    wilson_interval,
    write_spotcheck,
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
from heldout.analysis._verdict_sources import (
    samples_from_runs,
    verdicts_from_runs,
    verdicts_from_scores,
    verdicts_from_sources,
)

__all__ = [
    "ALL_COHORTS",
    "AgreementEstimate",
    "AgreementReport",
    "AgreementRow",
    "CheckpointOverfit",
    "CheckpointVerdict",
    "Correction",
    "Disagreement",
    "Guard",
    "JudgeAccuracy",
    "JuryMethod",
    "JuryResult",
    "JuryVerdict",
    "KappaWeights",
    "LengthBias",
    "Level",
    "MeanInterval",
    "MetricRow",
    "Objective",
    "OverfitReport",
    "OverfitRow",
    "OverfitStatus",
    "PairKappa",
    "PairedTest",
    "PositionBias",
    "RegressionTable",
    "RowChange",
    "Selection",
    "SelfPreference",
    "SpotCheckItem",
    "SpotCheckReport",
    "SpotCheckSample",
    "Stratum",
    "TestMethod",
    "VerdictStatus",
    "adjust_p_values",
    "alpha_interval",
    "axis_metric",
    "axis_results",
    "calibrated_p_a",
    "cohen_kappa",
    "disagreement_rate",
    "judge_agreement",
    "judge_overfitting",
    "jury",
    "kappa_interval",
    "krippendorff_alpha",
    "length_bias",
    "mean_interval",
    "model_family",
    "overfitting_from_scores",
    "paired_test",
    "position_bias",
    "regression_table",
    "row_changes",
    "samples_from_runs",
    "scores_from_verdicts",
    "select_checkpoint",
    "self_preference",
    "spotcheck_sample",
    "spotcheck_score",
    "training_judge_sweep",
    "verdicts_from_runs",
    "verdicts_from_scores",
    "verdicts_from_sources",
    "wilson_interval",
    "with_axis_metrics",
    "write_disagreements",
    "write_spotcheck",
]
