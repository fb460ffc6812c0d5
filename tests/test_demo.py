"""The main job's flow, with a scripted judge on the real test server.

The embedded judge takes minutes for the whole demo, so this drives the same code
(`run_demo`) through the OpenAI-protocol test server; the embedded judge's own
end-to-end checks live with the evaluators and the local judge.
"""

from __future__ import annotations

from pathlib import Path

from heldout import Store
from heldout.demo import run_demo
from heldout.examples import DEMO_CHECKPOINTS
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer

# Yes/No verdicts, A/B/C refusal labels, and the category words of the safety and
# toxicity category calls, so every kind of request gets a readable reply.
TOP = {
    "Yes": -0.2,
    "No": -1.9,
    "A": -0.4,
    "B": -1.6,
    "C": -2.2,
    "Insult": -0.7,
    "Crime": -0.9,
    "Other": -2.5,
}


async def test_demo_judges_every_cohort_and_checkpoint_and_reruns_for_free(
    openai_server: OpenAIServer, sqlite_store: Store, tmp_path: Path
) -> None:
    openai_server.top_logprobs = TOP
    settings = settings_for(openai_server)
    judge = f"openai:test-model@{openai_server.base_url}"
    report = tmp_path / "report.html"

    result = await run_demo(sqlite_store, settings=settings, judge=judge, report=report)

    assert result.summary.errors == 0
    cells = {(a.checkpoint, a.cohort, a.evaluator) for a in result.aggregates}
    checkpoints = {c for c, _, _ in cells}
    assert checkpoints == set(DEMO_CHECKPOINTS)
    assert {e for _, _, e in cells} >= {
        "task_completion",
        "groundedness",
        "content_safety",
        "refusal",
        "toxicity",
    }
    assert any(e.startswith("custom:") for _, _, e in cells)
    assert {c for _, c, _ in cells} == {"helpfulness", "harmlessness", "honesty", "regression"}
    html = report.read_text(encoding="utf-8")
    assert "<svg" in html
    assert "rlaif-step-1000" in html
    # The regression part: deltas against sft per cohort and axis, and the choice.
    regression = result.regression
    assert regression.table.baseline == "sft"
    metrics = {row.metric for row in regression.table.rows}
    assert any(m.startswith("custom:heldout-default.") for m in metrics)
    assert regression.selection is not None
    assert {v.checkpoint for v in regression.selection.candidates} == set(DEMO_CHECKPOINTS)
    assert "Which checkpoint to ship" in html

    calls = openai_server.requests
    again = await run_demo(sqlite_store, settings=settings, judge=judge, report=report)
    assert again.summary.computed == 0
    assert again.summary.resumed == result.summary.total
    assert openai_server.requests == calls
