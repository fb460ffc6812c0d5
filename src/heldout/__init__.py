"""heldout: held-out evaluation of LLM policies trained with AI feedback.

The package follows the pipeline: ``data`` (samples, cohorts) → ``judges`` (one async
protocol, OpenAI-compatible endpoints and an embedded llama.cpp judge) →
``evaluators`` (a sample in, a score out) → ``runner`` (bounded, resumable) →
``store`` (SQLite or PostgreSQL) → ``analysis`` → reports and dashboard.
"""

from heldout._errors import (
    BackendError,
    ConfigError,
    DataError,
    HeldoutError,
    JudgeError,
    JudgeParseError,
    JudgeRateLimited,
    JudgeRefused,
    JudgeTimeout,
    JudgeUnavailable,
    StoreError,
)
from heldout.config import Settings, load_settings
from heldout.data import ColumnMapping, Dataset, Sample
from heldout.evaluators import Criteria, Evaluator, Score
from heldout.judges import JudgeClient, JudgeSpec, make_judge
from heldout.runner import RunSummary, run_evaluation
from heldout.store import Store

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "ColumnMapping",
    "ConfigError",
    "Criteria",
    "DataError",
    "Dataset",
    "Evaluator",
    "HeldoutError",
    "JudgeClient",
    "JudgeError",
    "JudgeParseError",
    "JudgeRateLimited",
    "JudgeRefused",
    "JudgeSpec",
    "JudgeTimeout",
    "JudgeUnavailable",
    "RunSummary",
    "Sample",
    "Score",
    "Settings",
    "Store",
    "StoreError",
    "__version__",
    "load_settings",
    "make_judge",
    "run_evaluation",
]
