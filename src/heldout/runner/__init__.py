"""The runner: bounded, resumable, streaming evaluation."""

from heldout.runner._progress import RichProgress
from heldout.runner._result import EvaluationResult, evaluate_dataset
from heldout.runner._runner import Progress, Row, RunSummary, interleave, run_evaluation, run_id_for

__all__ = [
    "EvaluationResult",
    "Progress",
    "RichProgress",
    "Row",
    "RunSummary",
    "evaluate_dataset",
    "interleave",
    "run_evaluation",
    "run_id_for",
]
