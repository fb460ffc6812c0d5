"""Data: held-out samples, the datasets that hold them, and the loaders that read them."""

from heldout.data._dataset import Dataset
from heldout.data._loaders import iter_jsonl, iter_samples
from heldout.data._mapping import ColumnMapping
from heldout.data._outputs import with_checkpoint_outputs
from heldout.data._sample import Sample

__all__ = [
    "ColumnMapping",
    "Dataset",
    "Sample",
    "iter_jsonl",
    "iter_samples",
    "with_checkpoint_outputs",
]
