"""Constitutions shipped with heldout, as YAML files (read them with
:meth:`heldout.evaluators.Constitution.load`)."""

from pathlib import Path

DEFAULT_CONSTITUTION = Path(__file__).with_name("default.yaml")
"""The default constitution: helpfulness, harmlessness, honesty and tone."""

__all__ = ["DEFAULT_CONSTITUTION"]
