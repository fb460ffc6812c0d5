"""The evaluators, under the names users of hosted evaluation SDKs expect.

    from heldout.evals import Groundedness, ContentSafety, Toxicity, TaskCompletion, Refusal
"""

from heldout.evaluators import Criteria, Evaluator, Score

__all__ = ["Criteria", "Evaluator", "Score"]
