"""The demo's held-out cohorts and three checkpoints' outputs, joined into datasets.

``heldout_cohorts.jsonl`` holds 60 prompts in four cohorts; ``checkpoints/<name>.jsonl``
holds one ``{"id": ..., "output": ...}`` line per prompt for each checkpoint. The
checkpoints tell a typical RLAIF story: ``sft`` is decent but sometimes vague or too
compliant, ``rlaif-step-500`` is the best, and ``rlaif-step-1000`` has over-optimised
against its training judge (sycophancy, over-refusal, confabulation, preachy tone).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from heldout._errors import DataError
from heldout.data._dataset import Dataset
from heldout.data._loaders import StrPath, read_jsonl

EXAMPLES_DIR = Path(__file__).parent
DEMO_PROMPTS = EXAMPLES_DIR / "heldout_cohorts.jsonl"
DEMO_CHECKPOINTS_DIR = EXAMPLES_DIR / "checkpoints"
DEMO_CHECKPOINTS = ("sft", "rlaif-step-500", "rlaif-step-1000")
"""The demo's checkpoints, oldest first: the first is the regression baseline."""


class CheckpointOutput(BaseModel):
    """One line of a checkpoint's outputs file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    """The id of the prompt answered."""
    output: str
    """The checkpoint's answer."""


def with_checkpoint_outputs(prompts: Dataset, path: StrPath, *, name: str) -> Dataset:
    """``prompts`` with each output taken from a checkpoint's outputs file.

    Args:
        prompts: The prompts, without outputs.
        path: JSON lines of ``{"id": ..., "output": ...}``, one per prompt.
        name: The checkpoint's name, used as the dataset's name.

    Returns:
        The prompts in their order, each with this checkpoint's output.

    Raises:
        DataError: The file cannot be read; a line is not an id and an output; an id
            repeats or is not a prompt; or a prompt has no output. The message names the
            file and, for a bad line, its number.
    """
    label = os.fspath(path)
    known = set(prompts.ids)
    outputs: dict[str, str] = {}
    for line, row in read_jsonl(Path(path), label):
        try:
            item = CheckpointOutput.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or None
            raise DataError(
                f'{first["msg"]}; each line must be {{"id": ..., "output": ...}}',
                path=label,
                line=line,
                field=field,
            ) from exc
        if item.id in outputs:
            raise DataError(f"id {item.id!r} repeats: one output per prompt", path=label, line=line)
        if item.id not in known:
            raise DataError(
                f"id {item.id!r} is not a prompt of {prompts.name!r}: remove the line or add "
                "the prompt",
                path=label,
                line=line,
                field="id",
            )
        outputs[item.id] = item.output
    missing = [sample_id for sample_id in prompts.ids if sample_id not in outputs]
    if missing:
        shown = ", ".join(repr(sample_id) for sample_id in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(
            f"no output for {len(missing)} prompt(s) of {prompts.name!r}: {shown}{more}; "
            "every prompt needs one output line",
            path=label,
        )
    return Dataset(
        (sample.model_copy(update={"output": outputs[sample.id]}) for sample in prompts),
        name=name,
    )


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
