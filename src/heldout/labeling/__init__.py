"""Labeling: constitution-guided AI preference labels for RLAIF, exported for TRL.

Candidates (a prompt and two or more responses, from a file or sampled from a policy
endpoint) are compared pair by pair by a :class:`ConstitutionalPreference` labeler on
the evaluation runner; :class:`LabelSet` exports the soft labels as JSON lines, Parquet
or a ``datasets.Dataset`` with TRL's ``prompt``/``chosen``/``rejected`` columns.
"""

from heldout.labeling._candidates import Candidates, read_candidates, sample_candidates
from heldout.labeling._label import label_preferences
from heldout.labeling._labeler import ConstitutionalPreference, PrincipleChoice
from heldout.labeling._labels import LabelSet, PreferenceLabel, labels_from_scores, read_labeler

__all__ = [
    "Candidates",
    "ConstitutionalPreference",
    "LabelSet",
    "PreferenceLabel",
    "PrincipleChoice",
    "label_preferences",
    "labels_from_scores",
    "read_candidates",
    "read_labeler",
    "sample_candidates",
]
