"""Trajectory files: reading a JSON lines file of trajectories, writing one, and
joining a checkpoint's trajectories to the prompts.

The row format is described in :mod:`heldout.data._trajectory`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from heldout._errors import DataError
from heldout.data._dataset import Dataset
from heldout.data._loaders import StrPath, check_file, read_jsonl
from heldout.data._mapping import Row
from heldout.data._trajectory import Trajectory, trajectory_from_row
from heldout.data._trajectory_wire import step_to_wire, tool_to_wire


def iter_trajectories(path: StrPath, *, cohort: str | None = None) -> Iterator[Trajectory]:
    """Stream the trajectories of a JSON lines file, one line at a time.

    Args:
        path: The file: one trajectory per line in the OpenAI chat format (see
            :mod:`heldout.data._trajectory`), whatever its suffix.
        cohort: The cohort of rows that name none (default ``"default"``).

    Raises:
        DataError: The file is missing or empty, a line is not JSON, a row is not a
            valid trajectory, or an id repeats. The message names the file, the line
            and the field (``messages[3].tool_calls[0].function.arguments``).
    """
    file, label = check_file(path)
    return _iter(file, label, cohort)


def _iter(file: Path, label: str, cohort: str | None) -> Iterator[Trajectory]:
    first_line: dict[str, int] = {}
    for line, row in read_jsonl(file, label):
        trajectory = trajectory_from_row(row, cohort=cohort, where=label, path=label, line=line)
        seen = first_line.setdefault(trajectory.id, line)
        if seen != line:
            raise DataError(
                f"duplicate id {trajectory.id!r}: first on line {seen}, again on line "
                f"{line}; ids must be unique within a dataset",
                path=label,
                line=line,
                field="id",
            )
        yield trajectory
    if not first_line:
        raise DataError("file holds no rows; expected one trajectory per line", path=label)


def load_trajectories(
    path: StrPath, *, cohort: str | None = None, name: str | None = None
) -> Dataset:
    """A Dataset of the trajectories in a JSON lines file, one Sample each.

    The Dataset works with ``add_evaluation`` and the trajectory evaluators like any
    other; ``to_jsonl`` writes it as Sample rows, the form a sweep's ``dataset`` reads.

    Args:
        path: The trajectories file (see :func:`iter_trajectories`).
        cohort: The cohort of rows that name none.
        name: The dataset's name (default: the file's stem).

    Raises:
        DataError: As in :func:`iter_trajectories`.
    """
    samples = (t.to_sample() for t in iter_trajectories(path, cohort=cohort))
    return Dataset(samples, name=name if name is not None else Path(path).stem)


def checkpoint_output_row(row: Row, prompts: Dataset, *, path: str, line: int) -> Row:
    """A checkpoint outputs row: trajectory rows become ``{"id", "output"}``.

    A row with ``messages`` is one trajectory of the checkpoint, in the same format as
    a trajectories file. It is joined to the prompt with the same ``id``; its task must
    be that prompt's input (the task, tools and plan come from the prompts, the steps
    from the checkpoint). Any other row is returned as it is.

    Raises:
        DataError: The row is not a valid trajectory, or its task is not its prompt's.
    """
    if "messages" not in row:
        return row
    trajectory = trajectory_from_row(row, where=path, path=path, line=line)
    try:
        task = prompts.by_id(trajectory.id).input
    except DataError:
        task = trajectory.task  # not a prompt: with_checkpoint_outputs says so
    if task != trajectory.task:
        raise DataError(
            f"the task of {trajectory.id!r} differs from the prompt's input: this trajectory "
            "answers another task; check the ids",
            path=path,
            line=line,
            field="messages",
        )
    return {"id": trajectory.id, "output": trajectory.steps_json()}


def write_trajectories(trajectories: Sequence[Trajectory], path: StrPath) -> None:
    """Write trajectories as JSON lines in the chat format :func:`iter_trajectories` reads.

    Raises:
        DataError: The file cannot be written.
    """
    try:
        with Path(path).open("w", encoding="utf-8", newline="\n") as handle:
            for trajectory in trajectories:
                handle.write(json.dumps(_to_row(trajectory), ensure_ascii=False) + "\n")
    except OSError as exc:
        raise DataError(f"cannot write file: {exc.strerror}", path=os.fspath(path)) from exc


def _to_row(trajectory: Trajectory) -> Row:
    messages: list[Any] = []
    if trajectory.system is not None:
        messages.append({"role": "system", "content": trajectory.system})
    messages.append({"role": "user", "content": trajectory.task})
    messages.extend(step_to_wire(step) for step in trajectory.steps)
    row: Row = {"id": trajectory.id, "cohort": trajectory.cohort, "messages": messages}
    if trajectory.tools is not None:
        row["tools"] = [tool_to_wire(t) for t in trajectory.tools]
    if trajectory.expected_outcome is not None:
        row["expected_outcome"] = trajectory.expected_outcome
    if trajectory.reference_plan is not None:
        row["reference_plan"] = list(trajectory.reference_plan)
    if trajectory.metadata:
        row["metadata"] = trajectory.metadata
    return row
