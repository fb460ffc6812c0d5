"""Cohort rules, on SQLite and PostgreSQL: match, sample, dedup, cap, window, Dataset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from heldout import ConfigError, Store
from heldout.tracing import (
    CohortRules,
    SpanRecord,
    cohort_dataset,
    cohort_sizes,
    cohort_traces,
    get_trace,
    load_cohort_rules,
    normalise,
    parse_duration,
    refresh_cohorts,
    store_spans,
)

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def trace(n: int, question: str, *, age: timedelta = timedelta(0), **attributes: Any) -> SpanRecord:
    start = NOW - age
    return SpanRecord(
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        name="turn",
        start_time=start,
        end_time=start + timedelta(seconds=1),
        attributes={
            "openinference.span.kind": "CHAIN",
            "input.value": question,
            "output.value": f"answer {n}",
            **attributes,
        },
    )


def rules(**cohort: Any) -> CohortRules:
    return CohortRules.model_validate({"cohorts": [{"name": "c", **cohort}]})


def test_attribute_and_field_conditions(store: Store) -> None:
    spans = [
        trace(1, "refund please", tier="gold"),
        trace(2, "refund now", tier="silver"),
        trace(3, "hello", tier="gold"),
    ]
    chosen = rules(
        match=[{"attribute": "tier", "in": ["gold"]}, {"field": "input", "regex": "(?i)REFUND"}]
    )
    result = store_spans(store, spans, chosen, at=NOW)
    assert result.joined == {"c": 1}
    assert [t.trace_id for t in cohort_traces(store, "c")] == [f"{1:032x}"]


def test_near_identical_inputs_join_once_unless_dedup_is_off(store: Store) -> None:
    spans = [
        trace(1, "Where is order #1234?", age=timedelta(minutes=2)),
        trace(2, "where is ORDER 98765", age=timedelta(minutes=1)),
        trace(3, "Where is my parcel?"),
    ]
    assert normalise("Where is order #1234?") == normalise("where is ORDER 98765")
    store_spans(store, spans, rules(), at=NOW)
    assert [t.trace_id[-1] for t in cohort_traces(store, "c")] == ["3", "1"]
    refresh_cohorts(store, rules(dedup=False), at=NOW)
    assert cohort_sizes(store)[0].members == 3


def test_the_cap_keeps_the_newest_and_the_window_drops_the_old(store: Store) -> None:
    spans = [trace(i, f"question {chr(97 + i)}", age=timedelta(hours=i)) for i in range(1, 7)]
    store_spans(store, spans, rules(cap=3, window="330m"), at=NOW)
    kept = [t.trace_id[-1] for t in cohort_traces(store, "c")]
    assert kept == ["1", "2", "3"]
    # A day later every member is past the window.
    assert refresh_cohorts(store, rules(window="330m"), at=NOW + timedelta(days=1)) == {"c": 0}


def test_sampling_is_seeded_stable_and_close_to_the_rate(store: Store) -> None:
    spans = [trace(i, "the same question") for i in range(1, 401)]
    half = rules(sample_rate=0.5, cap=None, dedup=False)
    first = store_spans(store, spans, half, at=NOW).joined["c"]
    assert 150 < first < 250
    members = {t.trace_id for t in cohort_traces(store, "c", limit=500)}
    assert refresh_cohorts(store, half, at=NOW) == {"c": first}
    assert {t.trace_id for t in cohort_traces(store, "c", limit=500)} == members
    reseeded = CohortRules.model_validate(
        {"seed": 1, "cohorts": [{"name": "c", "sample_rate": 0.5, "cap": None, "dedup": False}]}
    )
    refresh_cohorts(store, reseeded, at=NOW)
    assert {t.trace_id for t in cohort_traces(store, "c", limit=500)} != members


def test_spans_of_one_trace_arriving_apart_make_one_trace(store: Store) -> None:
    root = trace(1, "late question")
    child = SpanRecord(
        trace_id=root.trace_id,
        span_id="f" * 16,
        parent_span_id=root.span_id,
        name="retrieve",
        start_time=NOW,
        end_time=NOW,
        attributes={
            "openinference.span.kind": "RETRIEVER",
            "retrieval.documents.0.document.content": "doc",
        },
    )
    store_spans(store, [child], rules(), at=NOW)
    assert cohort_sizes(store) == []  # no input yet: not a member
    store_spans(store, [root], rules(), at=NOW)
    found = get_trace(store, root.trace_id)
    assert found is not None
    record, spans = found
    assert (record.n_spans, record.input, record.context) == (2, "late question", "doc")
    assert len(spans) == 2


def test_a_cohort_is_a_dataset(store: Store) -> None:
    store_spans(store, [trace(1, "a?", session_id="s"), trace(2, "b?")], rules(), at=NOW)
    dataset = cohort_dataset(store, "c")
    assert [s.input for s in dataset] == ["a?", "b?"]
    assert {s.cohort for s in dataset} == {"c"}
    assert dataset[0].output == "answer 1"
    assert dataset[0].metadata["source"] == "trace"


def test_rules_file_errors_name_the_line(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "window: 2d\ncohorts:\n  - name: refunds\n    match:\n"
        "      - {field: input, contains: refund}\n    sample_rate: 0.5\n",
        encoding="utf-8",
    )
    loaded = load_cohort_rules(good)
    assert loaded.window == timedelta(days=2)
    assert loaded.cohorts[0].sample_rate == 0.5
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "cohorts:\n  - name: x\n    match:\n      - {attribute: a, equals: 1, contains: b}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"bad.yaml:4: field cohorts\[0\].match\[0\]"):
        load_cohort_rules(bad)
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration("soon")
    assert parse_duration("10m") == timedelta(minutes=10)
