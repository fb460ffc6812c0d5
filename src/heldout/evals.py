"""The evaluators, under the names users of hosted evaluation SDKs expect::

from heldout.evals import Groundedness, ContentSafety, Toxicity, TaskCompletion, Refusal
from heldout.evals import CustomEvaluation
"""

from heldout.evaluators import (
    Constitution,
    ContentSafety,
    Criteria,
    CustomEvaluation,
    Evaluator,
    Groundedness,
    Hallucination,
    Refusal,
    Score,
    TaskCompletion,
    Toxicity,
)

__all__ = [
    "Constitution",
    "ContentSafety",
    "Criteria",
    "CustomEvaluation",
    "Evaluator",
    "Groundedness",
    "Hallucination",
    "Refusal",
    "Score",
    "TaskCompletion",
    "Toxicity",
]
