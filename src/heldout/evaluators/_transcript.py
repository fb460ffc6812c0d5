"""A trajectory as the judge reads it, fitted to the judge's context, with a record of
every cut.

Two ways to fit a long trajectory into ``max_chars`` characters:

- :func:`fit` keeps the whole trajectory in one view, for judging it as a whole (goal,
  plan). It clips over-long step texts, then summarises steps from the middle outward
  into one-line digests, then leaves middle steps out, never touching the first steps
  (where the agent sets out its plan) or the last ones (where it ends and answers)
  unless nothing else is left to shorten.
- :func:`windows` shows every step in full (clipped only where one step is over-long)
  across consecutive windows, for checks that must see each step (safety, tool
  arguments). Each window after the first opens with the agent's first message, so
  the judge knows the plan the window's steps serve.

Nothing is cut silently: the text marks each cut where it happened, and
:meth:`Transcript.record` lists them for the score's metadata.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from heldout.data._trajectory import Step, Trajectory

CutKind = Literal["clipped", "summarised", "omitted"]

_DIGEST_CONTENT = 160  # characters of an assistant's text kept in a digest: its intent
_DIGEST_ARGUMENTS = 100
_DIGEST_RESULT = 80
_PLAN_CHARS = 400


@dataclass(frozen=True)
class Cut:
    """One shortening.

    Attributes:
        step: The 1-based step shortened.
        kind: ``clipped`` (a long text cut in its middle), ``summarised`` (the step
            shown as a one-line digest) or ``omitted`` (left out, marked in its place).
        chars: The characters of the step before this cut.
        kept: The characters shown instead.
    """

    step: int
    kind: CutKind
    chars: int
    kept: int


@dataclass(frozen=True)
class Transcript:
    """The text the judge reads, and what was cut to make it fit.

    Attributes:
        text: The numbered steps, with markers where something was cut.
        first: The first step covered (1-based).
        last: The last step covered.
        total_steps: The steps of the whole trajectory.
        max_chars: The budget the text was fitted to.
        cuts: Every cut, in step order.
    """

    text: str
    first: int
    last: int
    total_steps: int
    max_chars: int
    cuts: tuple[Cut, ...] = field(default=())

    @property
    def over_budget(self) -> bool:
        """The text is still longer than the budget (nothing left to shorten)."""
        return len(self.text) > self.max_chars

    def record(self) -> dict[str, Any]:
        """What was cut, as JSON-ready data for a score's metadata."""
        return {
            "steps": f"{self.first}-{self.last}" if self.last else "none",
            "total_steps": self.total_steps,
            "chars": len(self.text),
            "max_chars": self.max_chars,
            "over_budget": self.over_budget,
            **{
                kind: [c.step for c in self.cuts if c.kind == kind]
                for kind in ("clipped", "summarised", "omitted")
            },
            "chars_cut": sum(c.chars - c.kept for c in self.cuts),
        }


def clip(text: str, limit: int) -> str:
    """``text`` cut in its middle to at most ``limit`` characters, marker included."""
    if len(text) <= limit:
        return text
    room = max(limit - len(f" [... {len(text)} characters cut ...] "), 0)
    head = text[: room * 2 // 3]
    tail = text[len(text) - (room - len(head)) :] if room > len(head) else ""
    return f"{head} [... {len(text) - len(head) - len(tail)} characters cut ...] {tail}"


def _call_label(trajectory: Trajectory, step: Step) -> str:
    call = next(
        (c for s in trajectory.steps for c in s.tool_calls if c.id == step.tool_call_id), None
    )
    name = step.name or (call.name if call is not None else "?")
    return f"{name} [{step.tool_call_id}]"


def render_step(
    trajectory: Trajectory, number: int, step: Step, *, limit: int | None = None
) -> str:
    """Step ``number`` in full, each text clipped to ``limit`` characters when given."""

    def text(value: str) -> str:
        return value if limit is None else clip(value, limit)

    final = number == len(trajectory.steps) and trajectory.final_answer is not None
    if step.role == "tool":
        return f"Step {number} (tool result of {_call_label(trajectory, step)}): " + text(
            step.content or ""
        )
    role = "assistant, final answer" if final else step.role
    lines = [f"Step {number} ({role}):" + (f" {text(step.content)}" if step.content else "")]
    lines += [f"  calls {c.name} {text(c.arguments)} [{c.id}]" for c in step.tool_calls]
    return "\n".join(lines)


def digest_step(trajectory: Trajectory, number: int, step: Step) -> str:
    """Step ``number`` on one line: what it said, called or got back, briefly."""
    if step.role == "tool":
        result = clip(" ".join((step.content or "").split()), _DIGEST_RESULT)
        return f"Step {number} (summarised; result of {_call_label(trajectory, step)}): {result}"
    parts = []
    if step.content:
        parts.append(clip(" ".join(step.content.split()), _DIGEST_CONTENT))
    parts += [f"calls {c.name} {clip(c.arguments, _DIGEST_ARGUMENTS)}" for c in step.tool_calls]
    return f"Step {number} (summarised; {step.role}): " + "; ".join(parts)


def _omitted(trajectory: Trajectory, numbers: Sequence[int]) -> str:
    calls = Counter(c.name for n in numbers for c in trajectory.steps[n - 1].tool_calls)
    called = ", ".join(f"{name} x{count}" for name, count in sorted(calls.items()))
    span = f"step {numbers[0]}" if len(numbers) == 1 else f"steps {numbers[0]}-{numbers[-1]}"
    return (
        f"[{span} omitted to fit the judge's context: {len(numbers)} step(s)"
        + (f"; tool calls in them: {called}" if called else "")
        + "]"
    )


def _ending(trajectory: Trajectory) -> list[str]:
    if trajectory.final_answer is None:
        return ["(The trajectory ends here, without a final answer.)"]
    return []


def fit(
    trajectory: Trajectory,
    *,
    max_chars: int,
    max_step_chars: int,
    keep_head: int = 2,
    keep_tail: int = 3,
) -> Transcript:
    """The whole trajectory in at most ``max_chars`` characters, if it can be done.

    Args:
        trajectory: The trajectory.
        max_chars: The budget for the steps' text.
        max_step_chars: The most characters of any one text (message, arguments,
            result) before it is clipped.
        keep_head: Leading steps kept in full as long as anything else can be cut.
        keep_tail: Trailing steps kept likewise; the final answer is never cut.
    """
    steps = trajectory.steps
    total = len(steps)
    numbered = list(enumerate(steps, start=1))
    full = {n: render_step(trajectory, n, step) for n, step in numbered}
    shown = {n: render_step(trajectory, n, step, limit=max_step_chars) for n, step in numbered}
    kinds: dict[int, CutKind] = {n: "clipped" for n in shown if shown[n] != full[n]}
    protected = set(range(1, min(keep_head, total) + 1))
    protected |= set(range(max(total - keep_tail, 0) + 1, total + 1))
    # Centre-out: the steps farthest from both the plan and the ending go first.
    middle = sorted((n for n in shown if n not in protected), key=lambda n: abs(2 * n - total - 1))
    final = total if trajectory.final_answer is not None else None
    ending = _ending(trajectory)
    size = sum(len(text) + 1 for text in shown.values()) + sum(len(e) + 1 for e in ending)

    def summarise(numbers: Sequence[int]) -> None:
        nonlocal size
        for n in numbers:
            if size <= max_chars:
                return
            digest = digest_step(trajectory, n, steps[n - 1])
            size += len(digest) - len(shown[n])
            shown[n], kinds[n] = digest, "summarised"

    summarise(middle)
    marker = len(_omitted(trajectory, sorted(middle))) + 1 if middle else 0
    for n in middle:
        if size + (marker if "omitted" in kinds.values() else 0) <= max_chars:
            break
        size -= len(shown[n]) + 1
        kinds[n] = "omitted"
    # Only when the middle is gone: the opening and closing steps, never the answer.
    summarise([n for n in sorted(protected) if n != final])

    lines: list[str] = []
    run: list[int] = []
    for n in range(1, total + 2):  # one past the end closes the last run
        if n in kinds and kinds[n] == "omitted":
            run.append(n)
            continue
        if run:
            lines.append(_omitted(trajectory, run))
            run = []
        if n <= total:
            lines.append(shown[n])
    cuts = tuple(
        Cut(n, kind, len(full[n]), 0 if kind == "omitted" else len(shown[n]))
        for n, kind in sorted(kinds.items())
    )
    return Transcript("\n".join(lines + ending), 1 if total else 0, total, total, max_chars, cuts)


def windows(trajectory: Trajectory, *, max_chars: int, max_step_chars: int) -> list[Transcript]:
    """Consecutive windows of whole steps, each at most ``max_chars`` characters.

    A step longer than a window on its own is clipped to fit, and recorded so. A
    trajectory without steps gives one window with no steps.
    """
    steps = trajectory.steps
    total = len(steps)
    ending = _ending(trajectory)
    header = len(_window_header(trajectory, total, total)) + 1
    budget = max_chars - sum(len(line) + 1 for line in ending)
    limit = max(min(max_step_chars, budget - header), 200)
    shown: dict[int, str] = {}
    cuts: dict[int, Cut] = {}
    groups: list[list[int]] = []
    size = 0
    for n, step in enumerate(steps, start=1):
        full = render_step(trajectory, n, step)
        # Each text is clipped, then the step as a whole, so that any step fits a window.
        shown[n] = clip(render_step(trajectory, n, step, limit=limit), budget - header)
        if shown[n] != full:
            cuts[n] = Cut(n, "clipped", len(full), len(shown[n]))
        if groups and size + len(shown[n]) + 1 <= budget:
            groups[-1].append(n)
            size += len(shown[n]) + 1
        else:
            groups.append([n])
            size = (header if groups[:-1] else 0) + len(shown[n]) + 1
    if not groups:
        return [Transcript("\n".join(ending), 0, 0, 0, max_chars)]
    out = []
    for index, group in enumerate(groups):
        lines = [shown[n] for n in group]
        if index > 0:
            lines.insert(0, _window_header(trajectory, group[0], group[-1]))
        if index == len(groups) - 1:
            lines += ending
        text = "\n".join(lines)
        parts = tuple(cuts[n] for n in group if n in cuts)
        out.append(Transcript(text, group[0], group[-1], total, max_chars, parts))
    return out


def _window_header(trajectory: Trajectory, first: int, last: int) -> str:
    """The line that opens a later window: where it is, and the agent's first message."""
    where = (
        f"[Steps {first}-{last} of {len(trajectory.steps)}; the earlier steps are judged "
        "in another window."
    )
    opening = next(
        (s.content for s in trajectory.steps if s.role == "assistant" and s.content), None
    )
    if opening is None:
        return where + "]"
    return where + f' The agent began by saying: "{clip(" ".join(opening.split()), _PLAN_CHARS)}"]'


def windows_record(parts: Sequence[Transcript]) -> dict[str, Any]:
    """What :func:`windows` cut, for a score's metadata."""
    return {
        "windows": [f"{p.first}-{p.last}" for p in parts],
        "total_steps": parts[0].total_steps if parts else 0,
        "max_chars": parts[0].max_chars if parts else 0,
        "over_budget": any(p.over_budget for p in parts),
        "clipped": [c.step for p in parts for c in p.cuts],
        "chars_cut": sum(c.chars - c.kept for p in parts for c in p.cuts),
    }
