"""Example data shipped with heldout, used by ``heldout demo``."""

from heldout.data import with_checkpoint_outputs
from heldout.examples._demo_data import (
    DEMO_CHECKPOINTS,
    DEMO_CHECKPOINTS_DIR,
    DEMO_PROMPTS,
    EXAMPLES_DIR,
    load_demo_checkpoints,
)

QUICKSTART = EXAMPLES_DIR / "quickstart.jsonl"
DEMO_SWEEP = EXAMPLES_DIR / "demo_sweep.yaml"
"""The sweep behind ``heldout demo``: a starting point for your own."""
TRAJECTORIES = EXAMPLES_DIR / "trajectories.jsonl"
"""Agent trajectories with tools (OpenAI chat format), among them
``inventory-transfer-lost``: every step locally right, the goal lost. Read them with
:func:`heldout.data.load_trajectories`."""

__all__ = [
    "DEMO_CHECKPOINTS",
    "DEMO_CHECKPOINTS_DIR",
    "DEMO_PROMPTS",
    "DEMO_SWEEP",
    "EXAMPLES_DIR",
    "QUICKSTART",
    "TRAJECTORIES",
    "load_demo_checkpoints",
    "with_checkpoint_outputs",
]
