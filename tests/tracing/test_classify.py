"""Classifier cohort rules against the OpenAI-protocol test server: cheap tests first,
verdicts through the judge client and its cache, errors recorded and retried."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from heldout import ConfigError, Store
from heldout.tracing import (
    ClassifierStatus,
    CohortRules,
    classifier_errors,
    classifier_status,
    classify_traces,
    cohort_traces,
    load_cohort_rules,
    refresh_cohorts,
    store_spans,
)
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer
from tests.tracing.test_cohorts import NOW, trace

QUESTION = "Is the user asking for a refund?"


def refund_judge(body: dict[str, Any]) -> str:
    """Yes when the input block mentions a refund; the question must be in the prompt."""
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    assert QUESTION in system
    shown = re.search(r"<input>\n(.*?)\n</input>", user, re.S)
    assert shown is not None
    return "Yes" if "refund" in shown.group(1).lower() else "No"


@pytest.fixture
def judge(openai_server: OpenAIServer) -> OpenAIServer:
    openai_server.responder = refund_judge
    openai_server.top_logprobs = None  # P(Yes) is then 1 or 0, read from the text
    return openai_server


def classified(server: OpenAIServer, **classify: Any) -> CohortRules:
    return CohortRules.model_validate(
        {
            "cohorts": [
                {
                    "name": "refunds",
                    "match": [{"attribute": "tier", "equals": "gold"}],
                    "classify": {
                        "question": QUESTION,
                        "judge": f"openai:judge@{server.base_url}",
                        **classify,
                    },
                }
            ]
        }
    )


def members(store: Store) -> list[str]:
    return sorted(t.trace_id[-1] for t in cohort_traces(store, "refunds"))


SPANS = [
    trace(1, "I want a refund for my kettle", tier="gold"),
    trace(2, "Where is my parcel?", tier="gold"),
    trace(3, "Refund me now", tier="silver"),  # fails the cheap test: never judged
    trace(4, "Can I get my money back (a refund) for the shoes?", tier="gold"),
]


async def test_the_judge_sees_only_traces_that_passed_the_cheap_tests(
    sqlite_store: Store, judge: OpenAIServer
) -> None:
    rules = classified(judge)
    assert store_spans(sqlite_store, SPANS, rules, at=NOW).joined == {}
    (pending,) = classifier_status(sqlite_store)
    assert pending == ClassifierStatus(
        cohort="refunds", awaiting=3, errors=0, joined=0, rejected=0, skipped=0
    )
    (result,) = await classify_traces(sqlite_store, rules, settings=settings_for(judge), at=NOW)
    assert (result.judged, result.joined, result.errors) == (3, 2, 0)
    assert judge.requests == 3
    assert members(sqlite_store) == ["1", "4"]
    (done,) = classifier_status(sqlite_store)
    assert (done.awaiting, done.joined, done.rejected) == (0, 2, 1)
    # A refresh keeps the verdicts; nothing is judged again.
    refresh_cohorts(sqlite_store, rules, at=NOW)
    await classify_traces(sqlite_store, rules, settings=settings_for(judge), at=NOW)
    assert judge.requests == 3
    assert members(sqlite_store) == ["1", "4"]


async def test_a_judge_error_is_recorded_and_retried_never_a_verdict(
    store: Store, judge: OpenAIServer
) -> None:
    rules = classified(judge)
    store_spans(store, SPANS[:2], rules, at=NOW)
    # Three attempts per trace (max_retries 2), every one a 500.
    judge.fail_next(*["500"] * 6)
    (failed,) = await classify_traces(store, rules, settings=settings_for(judge), at=NOW)
    assert (failed.judged, failed.errors) == (0, 2)
    assert members(store) == []  # not admitted ...
    (status,) = classifier_status(store)
    assert (status.errors, status.joined, status.rejected) == (2, 0, 0)  # ... nor dropped
    errors = classifier_errors(store, "refunds")
    assert {e.error_kind for e in errors} == {"unavailable"}
    assert all(e.attempts == 1 for e in errors)
    assert "gave up after 3 attempts" in (errors[0].error or "")
    # The next classification judges them again, and this time the judge answers.
    (retried,) = await classify_traces(store, rules, settings=settings_for(judge), at=NOW)
    assert (retried.judged, retried.joined, retried.errors) == (2, 1, 0)
    assert members(store) == ["1"]
    assert classifier_errors(store, "refunds") == []


async def test_new_text_is_judged_again_and_the_cache_answers_known_text(
    sqlite_store: Store, judge: OpenAIServer
) -> None:
    rules = classified(judge, reads=["input", "output"])
    store_spans(sqlite_store, [SPANS[0]], rules, at=NOW)
    settings = settings_for(judge)
    await classify_traces(sqlite_store, rules, settings=settings, at=NOW)
    assert (judge.requests, members(sqlite_store)) == (1, ["1"])
    # The same trace with another output: the old verdict no longer holds.
    changed = trace(1, "I want a refund for my kettle", tier="gold")
    changed = changed.model_copy(
        update={"attributes": {**changed.attributes, "output.value": "No refunds, sorry."}}
    )
    store_spans(sqlite_store, [changed], rules, at=NOW)
    assert members(sqlite_store) == []
    assert classifier_status(sqlite_store)[0].awaiting == 1
    await classify_traces(sqlite_store, rules, settings=settings, at=NOW)
    assert (judge.requests, members(sqlite_store)) == (2, ["1"])
    # Back to the first text: judged again, but the store's response cache answers.
    store_spans(sqlite_store, [SPANS[0]], rules, at=NOW)
    await classify_traces(sqlite_store, rules, settings=settings, at=NOW)
    assert (judge.requests, members(sqlite_store)) == (2, ["1"])


async def test_a_trace_the_question_cannot_read_is_skipped_and_counted(
    sqlite_store: Store, judge: OpenAIServer
) -> None:
    rules = classified(judge, reads=["input", "context"])
    store_spans(sqlite_store, [SPANS[0]], rules, at=NOW)
    (result,) = await classify_traces(sqlite_store, rules, settings=settings_for(judge), at=NOW)
    assert (result.skipped, result.judged, judge.requests) == (1, 0, 0)
    assert classifier_status(sqlite_store)[0].skipped == 1


async def test_an_evaluator_of_the_registry_classifies_and_can_join_on_fail(
    sqlite_store: Store, openai_server: OpenAIServer
) -> None:
    # The criteria evaluator passes polite answers; the cohort gathers the impolite ones.
    openai_server.top_logprobs = None
    openai_server.responder = lambda body: (
        "No" if "shut up" in body["messages"][-1]["content"] else "Yes"
    )
    rules = CohortRules.model_validate(
        {
            "cohorts": [
                {
                    "name": "rude",
                    "classify": {
                        "evaluator": {"type": "criteria", "criteria": "The answer is polite."},
                        "join_on": "fail",
                    },
                }
            ]
        }
    )
    polite = trace(1, "q1")
    rude = trace(2, "q2").model_copy(
        update={"attributes": {**trace(2, "q2").attributes, "output.value": "shut up"}}
    )
    store_spans(sqlite_store, [polite, rude], rules, at=NOW)
    judge_spec = f"openai:judge@{openai_server.base_url}"
    (result,) = await classify_traces(
        sqlite_store, rules, settings=settings_for(openai_server), judge=judge_spec, at=NOW
    )
    assert (result.judged, result.joined) == (2, 1)
    assert [t.trace_id[-1] for t in cohort_traces(sqlite_store, "rude")] == ["2"]


def test_classifier_rules_are_checked_with_the_line(tmp_path: Path) -> None:
    cases = {
        "both": "question: Refund?\n      evaluator: {type: toxicity}",
        "neither": "judge: openai:x",
        "threshold": "evaluator: {type: toxicity}\n      threshold: 0.7",
    }
    messages = {
        "both": "exactly one of question or evaluator",
        "neither": "exactly one of question or evaluator",
        "threshold": "evaluator.threshold",
    }
    for name, body in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"cohorts:\n  - name: c\n    classify:\n      {body}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=rf"{name}.yaml:4: field cohorts\[0\].classify"):
            load_cohort_rules(path)
        with pytest.raises(ConfigError, match=re.escape(messages[name])):
            load_cohort_rules(path)
