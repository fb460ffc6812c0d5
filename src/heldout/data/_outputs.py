"""A checkpoint's outputs: one ``{"id": ..., "output": ...}`` row per prompt.

Precomputed outputs of a checkpoint come as JSON lines, CSV or Parquet (any file
:meth:`~heldout.data.Dataset.load` reads), joined to the prompts by sample id. For a
trajectory cohort a line may instead be the checkpoint's whole trajectory in the chat
format (``{"id": ..., "messages": [...]}``); its steps become the output.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from heldout._errors import DataError
from heldout.data._dataset import Dataset
from heldout.data._loaders import StrPath, check_file, reader_for
from heldout.data._trajectory_io import checkpoint_output_row


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
        path: Rows of ``{"id": ..., "output": ...}``, one per prompt: JSON lines,
            CSV or Parquet, by suffix.
        name: The checkpoint's name, used as the dataset's name.

    Returns:
        The prompts in their order, each with this checkpoint's output.

    Raises:
        DataError: The file cannot be read; a line is not an id and an output; an id
            repeats or is not a prompt; or a prompt has no output. The message names the
            file and, for a bad line, its number.
    """
    file, label = check_file(path)
    known = set(prompts.ids)
    outputs: dict[str, str] = {}
    for line, source in reader_for(file, label)(file, label):
        row = checkpoint_output_row(source, prompts, path=label, line=line)
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
