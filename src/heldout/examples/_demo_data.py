"""The demo's held-out cohorts and three checkpoints' outputs, joined into datasets.

``heldout_cohorts.jsonl`` holds 60 prompts in four cohorts; ``checkpoints/<name>.jsonl``
holds one ``{"id": ..., "output": ...}`` line per prompt for each checkpoint. The
checkpoints tell a typical RLAIF story: ``sft`` is decent but sometimes vague or too
compliant, ``rlaif-step-500`` is the best, and ``rlaif-step-1000`` has over-optimised
against its training judge (sycophancy, over-refusal, confabulation, preachy tone).
"""

from __future__ import annotations

from pathlib import Path

from heldout.data._dataset import Dataset
from heldout.data._loaders import StrPath
from heldout.data._outputs import with_checkpoint_outputs

EXAMPLES_DIR = Path(__file__).parent
DEMO_PROMPTS = EXAMPLES_DIR / "heldout_cohorts.jsonl"
DEMO_CHECKPOINTS_DIR = EXAMPLES_DIR / "checkpoints"
DEMO_CHECKPOINTS = ("sft", "rlaif-step-500", "rlaif-step-1000")
"""The demo's checkpoints, oldest first: the first is the regression baseline."""


def load_demo_checkpoints(
    prompts: StrPath = DEMO_PROMPTS,
    checkpoints_dir: StrPath = DEMO_CHECKPOINTS_DIR,
    checkpoints: tuple[str, ...] = DEMO_CHECKPOINTS,
) -> dict[str, Dataset]:
    """The demo prompts with each checkpoint's outputs, ready for ``run_evaluation``.

    Args:
        prompts: The prompts file (default: the shipped held-out cohorts).
        checkpoints_dir: The folder holding ``<checkpoint>.jsonl`` outputs files.
        checkpoints: The checkpoints to load, oldest (the baseline) first.

    Returns:
        One dataset per checkpoint, in the order given, keyed by checkpoint name.

    Raises:
        DataError: A file is missing or invalid, or the outputs do not match the
            prompts one to one.
    """
    base = Dataset.load(prompts)
    folder = Path(checkpoints_dir)
    return {
        name: with_checkpoint_outputs(base, folder / f"{name}.jsonl", name=name)
        for name in checkpoints
    }
