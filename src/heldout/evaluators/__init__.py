"""Evaluators: one sample in, one score out, judged by a held-apart judge."""

from heldout import _registry
from heldout.evaluators._base import Evaluator, Verdict
from heldout.evaluators._constitution import Constitution
from heldout.evaluators._criteria import Criteria
from heldout.evaluators._custom import CustomEvaluation
from heldout.evaluators._efficiency import Efficiency
from heldout.evaluators._groundedness import Groundedness
from heldout.evaluators._hallucination import Hallucination
from heldout.evaluators._pairwise import OrderJudgment, Pair, PairwiseJudge, Preference
from heldout.evaluators._refusal import Refusal, RefusalRates, refusal_rates
from heldout.evaluators._safety import ContentSafety
from heldout.evaluators._score import Score, ScoreStatus
from heldout.evaluators._step_judges import StepCorrectness, StepSafety
from heldout.evaluators._task import TaskCompletion
from heldout.evaluators._tool_calls import ToolCallCorrectness
from heldout.evaluators._toxicity import Toxicity
from heldout.evaluators._trajectory import (
    PlanCoherence,
    TrajectoryEvaluator,
    TrajectoryGoalCompletion,
)
from heldout.evaluators._win_rate import WinRate

evaluators: _registry.Registry[Evaluator] = _registry.Registry("evaluator", Evaluator)
evaluators.register("content_safety", ContentSafety, aliases=("safety",))
evaluators.register("criteria", Criteria)
evaluators.register("custom", CustomEvaluation, aliases=("constitution",))
evaluators.register("efficiency", Efficiency)
evaluators.register("groundedness", Groundedness)
evaluators.register("hallucination", Hallucination)
evaluators.register("plan_coherence", PlanCoherence)
evaluators.register("refusal", Refusal)
evaluators.register("step_correctness", StepCorrectness)
evaluators.register("step_safety", StepSafety)
evaluators.register("task_completion", TaskCompletion, aliases=("task",))
evaluators.register("tool_call_correctness", ToolCallCorrectness, aliases=("tool_calls",))
evaluators.register("toxicity", Toxicity)
evaluators.register(
    "trajectory_goal_completion", TrajectoryGoalCompletion, aliases=("trajectory_goal",)
)
evaluators.register("win_rate", WinRate, aliases=("pairwise",))

__all__ = [
    "Constitution",
    "ContentSafety",
    "Criteria",
    "CustomEvaluation",
    "Efficiency",
    "Evaluator",
    "Groundedness",
    "Hallucination",
    "OrderJudgment",
    "Pair",
    "PairwiseJudge",
    "PlanCoherence",
    "Preference",
    "Refusal",
    "RefusalRates",
    "Score",
    "ScoreStatus",
    "StepCorrectness",
    "StepSafety",
    "TaskCompletion",
    "ToolCallCorrectness",
    "Toxicity",
    "TrajectoryEvaluator",
    "TrajectoryGoalCompletion",
    "Verdict",
    "WinRate",
    "evaluators",
    "refusal_rates",
]
