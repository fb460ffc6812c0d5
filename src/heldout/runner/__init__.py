"""The runner: bounded, resumable, streaming evaluation."""

from heldout.runner._runner import Progress, Row, RunSummary, interleave, run_evaluation, run_id_for

__all__ = ["Progress", "Row", "RunSummary", "interleave", "run_evaluation", "run_id_for"]
