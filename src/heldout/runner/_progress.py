"""A Rich progress bar fed by the runner's progress events."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from heldout.evaluators._score import Score


class RichProgress:
    """Shows scores done, errors so far and time left."""

    def __init__(self, console: Console, description: str = "judging") -> None:
        self._errors = 0
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[errors]} errors"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None
        self._outputs: TaskID | None = None
        self._failed_outputs = 0
        self._description = description

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def start(self, total: int, done: int) -> None:
        self._task = self._bar.add_task(self._description, total=total, completed=done, errors=0)

    def advance(self, score: Score) -> None:
        if self._task is None:
            return
        self._errors += score.status == "error"
        self._bar.update(self._task, advance=1, errors=self._errors)

    def start_outputs(self, total: int) -> None:
        self._outputs = self._bar.add_task("generating", total=total, completed=0, errors=0)

    def output_done(self, failed: bool) -> None:
        if self._outputs is None:
            return
        self._failed_outputs += failed
        self._bar.update(self._outputs, advance=1, errors=self._failed_outputs)
