"""Evaluators: one sample in, one score out, judged by a held-apart judge."""

from heldout import _registry
from heldout.evaluators._base import Evaluator, Verdict
from heldout.evaluators._criteria import Criteria
from heldout.evaluators._score import Score, ScoreStatus

evaluators: _registry.Registry[Evaluator] = _registry.Registry("evaluator", Evaluator)
evaluators.register("criteria", Criteria)

__all__ = ["Criteria", "Evaluator", "Score", "ScoreStatus", "Verdict", "evaluators"]
