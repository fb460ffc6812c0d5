"""Runs for the dashboard tests: an eval run with an XSS payload, a regression sweep, and
a pairwise win-rate run."""

from __future__ import annotations

import re
from typing import Any

from heldout import Sample, Score, Store, run_evaluation
from heldout._sync import run_sync
from heldout.evaluators import WinRate
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer

PAYLOAD = '<script>document.title="pwned"</script><img src=x onerror="document.title=1">'
EVAL_RUN = "eval-demo"
REGRESS_RUN = "regress-sweep"


def score(
    sample: Sample, passed: bool, *, evaluator: str = "criteria", judge: str = "openai:j1"
) -> Score:
    return Score(
        sample_id=sample.id,
        cohort=sample.cohort,
        evaluator=evaluator,
        status="ok",
        value=1.0 if passed else 0.0,
        passed=passed,
        reason=f"<b>{'fine' if passed else 'wrong'}</b> because the judge said so",
        judge=judge,
        template_version="t1",
    )


def seed_eval(store: Store, n: int = 12, *, run_id: str = EVAL_RUN) -> list[Sample]:
    """An eval run: ``n`` rows, the first holding a script payload, every third failed."""
    store.begin_run(run_id, name="demo eval", kind="eval", config={})
    samples = [
        Sample(
            id=f"row-{i:03d}",
            cohort=("helpfulness", "harmlessness")[i % 2],
            input=f"Question {i}: how do I reset my password?",
            output=PAYLOAD if i == 0 else f"Answer {i}",
            context="Passwords reset from the account page.",
        )
        for i in range(n)
    ]
    store.put_samples(run_id, samples)
    store.write_scores(run_id, [score(s, i % 3 != 0) for i, s in enumerate(samples)])
    store.write_scores(
        run_id,
        [
            score(s, i % 4 != 0, evaluator="safety", judge="openai:j2")
            for i, s in enumerate(samples)
        ],
    )
    store.finish_run(run_id, "done")
    return samples


def sweep_config() -> dict[str, Any]:
    return {
        "name": "sweep",
        "dataset": {"path": "prompts.jsonl"},
        "evaluators": [{"type": "criteria", "criteria": "correct"}],
        "baseline": "base",
        "checkpoints": [
            {"name": "base", "outputs": "base.jsonl"},
            {"name": "tuned", "outputs": "tuned.jsonl", "params": {"beta": 0.1}},
        ],
        "selection": {"objective": {"metrics": ["criteria"]}},
        "statistics": {"n_resamples": 199},
    }


def seed_regress(store: Store, n: int = 30) -> None:
    """A regression run: ``tuned`` fails far less than ``base``."""
    store.begin_run(REGRESS_RUN, name="sweep", kind="regress", config={"sweep": sweep_config()})
    for checkpoint, fail_every in (("base", 2), ("tuned", 10)):
        samples = [
            Sample(
                id=f"p{i:02d}",
                cohort="helpfulness",
                input=f"prompt {i}",
                output=f"{checkpoint} {i}",
            )
            for i in range(n)
        ]
        store.put_samples(REGRESS_RUN, samples, checkpoint=checkpoint)
        store.write_scores(
            REGRESS_RUN,
            [score(s, i % fail_every != 0) for i, s in enumerate(samples)],
            checkpoint=checkpoint,
        )
    store.finish_run(REGRESS_RUN, "done")


PAIRWISE_RUN = "pairwise-demo"
PAIRS = {
    "p0": ("A good answer.", "A bad answer."),  # the judge prefers the output: A
    "p1": ("A bad answer.", "A good answer."),  # the reference: B
    "p2": ("A good answer.", "Another good answer."),  # first position both times: a tie
}


def prefer_good(body: dict[str, Any]) -> str:
    """A judge that prefers a good response, and the first one shown when both are."""
    shown = re.search(r"<response_A>\n(.*?)\n</response_A>", body["messages"][-1]["content"], re.S)
    assert shown is not None
    return "A" if "good" in shown.group(1) else "B"


def seed_pairwise(store: Store, server: OpenAIServer) -> None:
    """A win-rate run judged by the real WinRate evaluator through the test server."""
    server.responder = prefer_good
    server.top_logprobs = None
    samples = [
        Sample(id=sid, input=f"Question {sid}?", output=output, reference=reference)
        for sid, (output, reference) in PAIRS.items()
    ]
    evaluator = WinRate(judge=f"openai:judge@{server.base_url}")
    # run_sync, not asyncio.run: Playwright's sync API keeps a loop running here.
    summary = run_sync(
        run_evaluation(
            samples, [evaluator], store=store, settings=settings_for(server), run_id=PAIRWISE_RUN
        )
    )
    assert (summary.computed, summary.errors) == (3, 0)
