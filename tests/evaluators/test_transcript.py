"""Fitting a trajectory to the judge's context: what is kept, and the record of cuts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from heldout.data import Trajectory, load_trajectories
from heldout.evaluators._transcript import clip, fit, windows, windows_record
from heldout.examples import TRAJECTORIES


def steps_shown(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"^Step (\d+)", text, re.M)]


def long_run(n: int, result: str = "ok") -> Trajectory:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Check every site."}]
    for i in range(n):
        call = {"id": f"c{i}", "function": {"name": "check", "arguments": f'{{"site": {i}}}'}}
        content = "My plan: check each site in turn." if i == 0 else None
        messages += [
            {"role": "assistant", "content": content, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"c{i}", "content": result},
        ]
    messages.append({"role": "assistant", "content": "All sites are fine."})
    return Trajectory.from_openai(messages, id="long")


def test_clip_keeps_head_and_tail_within_the_limit_and_says_how_much_it_cut() -> None:
    assert clip("short", 10) == "short"
    text = "a" * 600 + "b" * 400

    clipped = clip(text, 300)

    assert len(clipped) <= 300
    assert clipped.startswith("a" * 100)
    assert clipped.endswith("b" * 50)
    said = re.search(r" \[\.\.\. (\d+) characters cut \.\.\.\] ", clipped)
    assert said is not None
    assert int(said.group(1)) == len(text) - (len(clipped) - len(said.group(0)))


def test_a_trajectory_that_fits_is_untouched() -> None:
    trajectory = long_run(3)
    shown = fit(trajectory, max_chars=10_000, max_step_chars=500)
    assert steps_shown(shown.text) == list(range(1, 8))
    assert shown.cuts == ()
    assert shown.record()["chars_cut"] == 0


@pytest.mark.parametrize("budget", [3000, 1500, 700])
def test_the_middle_goes_first_and_the_plan_and_answer_stay(budget: int) -> None:
    trajectory = long_run(40)  # 81 steps

    shown = fit(trajectory, max_chars=budget, max_step_chars=500, keep_head=2, keep_tail=3)

    record = shown.record()
    assert len(shown.text) <= budget
    assert record["over_budget"] is False
    assert steps_shown(shown.text)[:2] == [1, 2]
    assert steps_shown(shown.text)[-1] == 81
    assert "Step 81 (assistant, final answer): All sites are fine." in shown.text
    assert "My plan: check each site in turn." in shown.text
    kept = set(steps_shown(shown.text))
    assert kept | set(record["omitted"]) == set(range(1, 82))
    assert kept.isdisjoint(record["omitted"])
    # Omitted steps form one run around the middle, marked where they were.
    first, last = record["omitted"][0], record["omitted"][-1]
    assert record["omitted"] == list(range(first, last + 1))
    assert first < 41 < last
    assert (
        f"[steps {first}-{last} omitted to fit the judge's context: {last - first + 1} step(s)"
        in shown.text
    )


def test_when_nothing_else_is_left_it_says_it_is_over_budget() -> None:
    trajectory = long_run(40, result="x" * 400)

    shown = fit(trajectory, max_chars=200, max_step_chars=500)

    assert shown.over_budget
    assert shown.record()["over_budget"] is True
    assert "Step 81 (assistant, final answer)" in shown.text  # the answer is never cut


def test_over_long_texts_are_clipped_and_recorded() -> None:
    trajectory = long_run(2, result="y" * 5000)

    shown = fit(trajectory, max_chars=10_000, max_step_chars=300)

    assert shown.record()["clipped"] == [2, 4]
    assert shown.text.count("characters cut ...]") == 2


def test_windows_show_every_step_once_each_within_budget() -> None:
    trajectory = long_run(30, result="z" * 120)

    parts = windows(trajectory, max_chars=1200, max_step_chars=500)

    assert len(parts) > 3
    shown = [n for part in parts for n in steps_shown(part.text)]
    assert shown == list(range(1, 62))
    assert all(len(part.text) <= 1200 for part in parts)
    for part in parts[1:]:
        assert part.text.startswith(f"[Steps {part.first}-{part.last} of 61;")
        assert 'The agent began by saying: "My plan: check each site in turn."' in part.text
    record = windows_record(parts)
    assert record["windows"][0] == f"1-{parts[0].last}"
    assert (record["clipped"], record["over_budget"]) == ([], False)


def test_a_step_too_long_for_any_window_is_clipped_to_fit() -> None:
    trajectory = long_run(1, result="w" * 5000)

    parts = windows(trajectory, max_chars=800, max_step_chars=5000)

    assert windows_record(parts)["clipped"] == [2]
    assert all(len(part.text) <= 800 for part in parts)


def test_an_unfinished_trajectory_says_so() -> None:
    trajectory = Trajectory.from_sample(
        load_trajectories(TRAJECTORIES).by_id("ci-revert")
    ).model_copy(update={"steps": ()})

    [part] = windows(trajectory, max_chars=1000, max_step_chars=100)
    assert part.text == "(The trajectory ends here, without a final answer.)"
    assert fit(trajectory, max_chars=1000, max_step_chars=100).text == part.text
