"""The runner: bounded, resumable, streaming evaluation."""

from heldout.runner._runner import Progress, RunSummary, run_evaluation, run_id_for

__all__ = ["Progress", "RunSummary", "run_evaluation", "run_id_for"]
