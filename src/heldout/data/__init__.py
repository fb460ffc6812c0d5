"""Data: held-out samples, the datasets that hold them, the loaders that read them, and
the training judge's imported verdicts."""

from heldout.data._dataset import Dataset
from heldout.data._loaders import iter_jsonl, iter_samples
from heldout.data._mapping import ColumnMapping
from heldout.data._outputs import with_checkpoint_outputs
from heldout.data._sample import Sample
from heldout.data._trajectory import Step, ToolCall, ToolSchema, Trajectory
from heldout.data._trajectory_io import iter_trajectories, load_trajectories, write_trajectories
from heldout.data._verdicts import (
    JudgeVerdict,
    Preference,
    PreferenceColumns,
    VerdictColumns,
    iter_preferences,
    iter_verdicts,
    load_preferences,
    load_verdicts,
    pair_id,
    preference_verdicts,
)

__all__ = [
    "ColumnMapping",
    "Dataset",
    "JudgeVerdict",
    "Preference",
    "PreferenceColumns",
    "Sample",
    "Step",
    "ToolCall",
    "ToolSchema",
    "Trajectory",
    "VerdictColumns",
    "iter_jsonl",
    "iter_preferences",
    "iter_samples",
    "iter_trajectories",
    "iter_verdicts",
    "load_preferences",
    "load_trajectories",
    "load_verdicts",
    "pair_id",
    "preference_verdicts",
    "with_checkpoint_outputs",
    "write_trajectories",
]
