"""Agent trajectories from traces: the shipped example trajectories replayed as the
spans an instrumented agent records (OpenInference and GenAI, real OpenTelemetry SDK),
turned back into Trajectories, and a production cohort of them judged whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from heldout import DataError
from heldout.data import Trajectory
from heldout.evaluators import ToolCallCorrectness
from heldout.tracing import (
    CohortRules,
    SpanRecord,
    cohort_dataset,
    decode_request,
    evaluate_cohorts,
    trajectory_from_spans,
)
from tests.conftest import settings_for
from tests.evaluators.test_trajectory import EXAMPLES, scripted_judge
from tests.support.openai_server import OpenAIServer
from tests.support.otel import Convention, encoded, provider, replay
from tests.web.conftest import serve

TRAJECTORIES = [Trajectory.from_sample(sample) for sample in EXAMPLES]


def recorded_spans(trajectory: Trajectory, convention: Convention, **kw: Any) -> list[SpanRecord]:
    memory = InMemorySpanExporter()
    replay(provider(memory), trajectory, convention=convention, **kw)
    return decode_request(encoded(memory.get_finished_spans()).SerializeToString(), "protobuf")


def steps_of(trajectory: Trajectory, *, names: bool = True) -> list[dict[str, Any]]:
    return [step.model_dump(exclude=set() if names else {"name"}) for step in trajectory.steps]


@pytest.mark.parametrize("convention", ["openinference", "genai"])
@pytest.mark.parametrize("original", TRAJECTORIES, ids=[t.id for t in TRAJECTORIES])
def test_a_replayed_trajectory_comes_back_from_its_spans(
    original: Trajectory, convention: Convention
) -> None:
    spans = recorded_spans(original, convention)
    rebuilt = trajectory_from_spans(spans, cohort="agent")
    assert rebuilt.id == spans[0].trace_id
    assert (rebuilt.task, rebuilt.system, rebuilt.cohort) == (
        original.task,
        original.system,
        "agent",
    )
    assert steps_of(rebuilt) == steps_of(original)
    assert rebuilt.tools == original.tools
    assert rebuilt.final_answer == original.final_answer
    assert rebuilt.metadata["source"] == "trace"


def test_without_tool_spans_the_results_come_from_the_llm_inputs() -> None:
    original = next(t for t in TRAJECTORIES if t.id == "inventory-transfer")
    for convention in ("openinference", "genai"):
        spans = recorded_spans(original, convention, tool_spans=False)  # type: ignore[arg-type]
        rebuilt = trajectory_from_spans(spans)
        # The tool's name travels on tool spans only; everything else is there.
        assert steps_of(rebuilt, names=False) == steps_of(original, names=False)


def test_a_tool_run_no_llm_span_announced_gets_its_call(tmp_path: Path) -> None:
    t0 = datetime(2025, 6, 1, tzinfo=UTC)

    def span(n: int, attributes: dict[str, Any], parent: int | None = 1) -> SpanRecord:
        return SpanRecord(
            trace_id="a" * 32,
            span_id=f"{n:016x}",
            parent_span_id=None if parent is None else f"{parent:016x}",
            name=f"s{n}",
            start_time=t0 + timedelta(seconds=n),
            end_time=t0 + timedelta(seconds=n + 1),
            status="error" if n == 3 else "ok",
            attributes=attributes,
        )

    spans = [
        span(
            1,
            {
                "openinference.span.kind": "AGENT",
                "input.value": "Ping the db",
                "output.value": "It is down.",
            },
            None,
        ),
        span(
            2,
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "ping",
                "gen_ai.tool.call.arguments": '{"host": "db"}',
            },
        ),
        span(
            3,
            {
                "openinference.span.kind": "TOOL",
                "tool.name": "ping",
                "input.value": '{"host": "db2"}',
            },
        ),
    ]
    rebuilt = trajectory_from_spans(spans)
    assert [s.role for s in rebuilt.steps] == [
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    assert [c.arguments for _, c in rebuilt.tool_calls()] == ['{"host": "db"}', '{"host": "db2"}']
    assert rebuilt.steps[3].content == "(the tool failed and returned nothing)"
    assert rebuilt.final_answer == "It is down."
    with pytest.raises(DataError, match="no span carries an input"):
        trajectory_from_spans(spans[1:])


def fit_and_goal_judge(body: dict[str, Any]) -> str:
    """The goal judge of the trajectory evaluator tests; every call fits the task."""
    if body["messages"][0]["content"].startswith(ToolCallCorrectness.intro):
        return "Yes"
    return scripted_judge(body)


async def test_a_cohort_of_agent_traces_is_judged_as_trajectories(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.responder = fit_and_goal_judge
    openai_server.top_logprobs = None
    rules = CohortRules.model_validate(
        {
            "cohorts": [
                {
                    "name": "agent-runs",
                    "match": [{"attribute": "gen_ai.operation.name", "equals": "invoke_agent"}],
                    "as": "trajectory",
                    "dedup": False,  # the good and the lost run share their task
                }
            ],
            "evaluators": [
                {"type": "trajectory_goal_completion"},
                {"type": "tool_call_correctness"},
            ],
        }
    )
    chosen = ["inventory-transfer", "inventory-transfer-lost", "calendar-bad-arguments"]
    for served in serve(tmp_path, rules=rules):
        exporter = OTLPSpanExporter(endpoint=f"{served.url}/v1/traces", headers=served.headers())
        tracer_provider = provider(exporter)
        trace_of: dict[str, str] = {}
        for name in chosen:
            original = next(t for t in TRAJECTORIES if t.id == name)
            replay(tracer_provider, original, convention="genai")
        tracer_provider.shutdown()

        dataset = cohort_dataset(served.store, "agent-runs", sample_as="trajectory")
        assert len(dataset) == 3
        for sample in dataset:
            trajectory = Trajectory.from_sample(sample)
            original = next(t for t in TRAJECTORIES if steps_of(t) == steps_of(trajectory))
            trace_of[original.id] = sample.id
            assert trajectory.tools == original.tools

        judge = f"openai:judge@{openai_server.base_url}"
        (summary,) = await evaluate_cohorts(
            served.store, rules, settings=settings_for(openai_server), judge=judge
        )
        assert (summary.computed, summary.errors) == (6, 0)
        scores = {(s.sample_id, s.evaluator): s for s in served.store.scores(summary.run_id)}

    def verdict(name: str, evaluator: str) -> bool | None:
        return scores[(trace_of[name], evaluator)].passed

    # Judged whole, the run that never created the transfer fails; the good one passes.
    assert verdict("inventory-transfer", "trajectory_goal_completion") is True
    assert verdict("inventory-transfer-lost", "trajectory_goal_completion") is False
    # The schemas came with the spans: the calendar's bad arguments break them.
    bad = scores[(trace_of["calendar-bad-arguments"], "tool_call_correctness")]
    assert bad.passed is False
    assert bad.metadata["schemas_known"] is True
    assert bad.metadata["violations"]
    assert verdict("inventory-transfer", "tool_call_correctness") is True
