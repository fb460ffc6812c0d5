"""Held-out evaluation inside training loops.

:class:`TrainingEval` is the trainer-independent part: a RegressionEval subset run
against each checkpoint of a training run as it is saved, into one run of the store.
Trainer integrations live in submodules that import their trainer's packages, so
``import heldout`` (and this package) never loads torch or transformers:

- ``heldout.integrations.trl``: :class:`~heldout.integrations.trl.HeldoutCallback`, a
  ``transformers.TrainerCallback`` for TRL's trainers (install ``heldout[trl]``).
"""

from heldout.integrations._training import CheckpointReport, TrainingEval

__all__ = ["CheckpointReport", "TrainingEval"]
