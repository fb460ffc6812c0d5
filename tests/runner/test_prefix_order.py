"""With a prefix-cached judge, the runner keeps one row's calls and one rubric's rows together."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Self

from heldout import Sample, Settings, Store, run_evaluation
from heldout.evaluators import Evaluator, Verdict
from heldout.judges import Judge, JudgeClient, JudgeReply, JudgeRequest, JudgeSpec, Message


class RecordingJudge(Judge):
    """Answers Yes after a short sleep and records the order of the prompts it saw."""

    provider = "scripted"

    def __init__(self, *, prefix_cached: bool) -> None:
        self.prefix_cached = prefix_cached
        self.seen: list[str] = []

    @classmethod
    def from_spec(cls, spec: JudgeSpec, settings: Settings) -> Self:
        raise NotImplementedError

    @property
    def model(self) -> str:
        return "recorder"

    @property
    def default_concurrency(self) -> int:
        return 1

    async def generate(self, request: JudgeRequest, *, timeout: float) -> JudgeReply:  # noqa: ASYNC109
        self.seen.append(request.messages[-1].content)
        await asyncio.sleep(0.001)
        return JudgeReply(text="Yes", choice_probs={"Yes": 1.0, "No": 0.0}, model="recorder")


class TwoQuestions(Evaluator):
    """Asks two questions per row, one after the other, as a constitution's axes are."""

    template_version = "two-v1"

    def __init__(self, name: str, client: JudgeClient) -> None:
        super().__init__(judge=client)
        self.name = name

    async def judge(self, sample: Sample, client: JudgeClient) -> Verdict:
        for part in ("a", "b"):
            request = JudgeRequest(
                messages=(Message(role="user", content=f"{self.name}/{sample.id}/{part}"),),
                mode="choice",
                choices=("Yes", "No"),
            )
            await client.call(request)
        return Verdict(value=1.0)


def rows(n: int) -> list[Sample]:
    return [Sample(id=f"r{i}", input="Q?", output="A.") for i in range(n)]


async def run(prefix_cached: bool, tmp_path_db: str) -> list[str]:
    judge = RecordingJudge(prefix_cached=prefix_cached)
    client = JudgeClient(judge)
    store = Store.open(tmp_path_db)
    try:
        evaluators = [TwoQuestions("first", client), TwoQuestions("second", client)]
        await run_evaluation(rows(6), evaluators, store=store, settings=Settings(), workers=64)
    finally:
        store.close()
    return judge.seen


async def test_a_prefix_cached_judge_sees_each_row_and_each_rubric_together(tmp_path: Path) -> None:
    seen = await run(True, f"sqlite:///{tmp_path / 'a.db'}")
    expected = [f"{e}/r{i}/{p}" for e in ("first", "second") for i in range(6) for p in "ab"]
    assert seen == expected


async def test_other_judges_keep_many_rows_in_flight(tmp_path: Path) -> None:
    seen = await run(False, f"sqlite:///{tmp_path / 'b.db'}")
    assert sorted(seen) == sorted(
        f"{e}/r{i}/{p}" for e in ("first", "second") for i in range(6) for p in "ab"
    )
    # Many rows in flight through one slot: their calls interleave.
    assert seen[:2] != ["first/r0/a", "first/r0/b"]
