"""Training-judge verdicts: DPO-style preferences and per-row scores or labels, read from
JSON lines, CSV and Parquet, with every bad row named by file, line and field."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from heldout import DataError
from heldout.data import (
    JudgeVerdict,
    PreferenceColumns,
    VerdictColumns,
    load_preferences,
    load_verdicts,
    pair_id,
    preference_verdicts,
)

from .conftest import WriteJsonl, WriteText


def where(path: Path, line: int | None = None, field: str | None = None) -> str:
    """The start of a DataError message, as a regex."""
    text = str(path) if line is None else f"{path}:{line}"
    if field is not None:
        text += f" field {field!r}"
    return "^" + re.escape(text + ": ")


def write_parquet(path: Path, rows: list[dict[str, object]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


# -- preferences ---------------------------------------------------------------------


def test_trl_preferences_read_with_ids_probabilities_and_cohorts(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl(
        "prefs.jsonl",
        [
            {"id": "p1", "prompt": "Q1", "chosen": "A", "rejected": "B", "probability": 0.9},
            {"id": 2, "prompt": "Q2", "chosen": "C", "rejected": "D", "cohort": "harm"},
            {"id": "p3", "prompt": "Q3", "chosen": "E", "rejected": "F", "probability": 0.5},
            {"id": "p4", "prompt": "Q4", "chosen": "G", "rejected": "H", "probability": 0.2},
        ],
    )
    prefs = load_preferences(path, cohort="helpful")
    assert [p.id for p in prefs] == ["p1", "2", "p3", "p4"]
    assert [p.cohort for p in prefs] == ["helpful", "harm", "helpful", "helpful"]
    assert [p.probability for p in prefs] == [0.9, None, 0.5, 0.2]
    assert [p.label for p in prefs] == ["chosen", "chosen", "tie", "rejected"]


def test_a_pair_without_id_gets_a_content_hash_that_survives_reordering(
    write_jsonl: WriteJsonl,
) -> None:
    rows = [
        {"prompt": "Q1", "chosen": "A", "rejected": "B"},
        {"prompt": "Q2", "chosen": "C", "rejected": "D"},
    ]
    first = load_preferences(write_jsonl("a.jsonl", rows))
    second = load_preferences(write_jsonl("b.jsonl", rows[::-1]))
    assert first[0].id == pair_id("Q1", "A", "B")
    assert first[0].id.startswith("pref-")
    assert len(first[0].id) == len("pref-") + 16
    assert {p.id for p in first} == {p.id for p in second}
    assert first[0].id != first[1].id


def test_a_repeated_pair_without_ids_is_refused_with_both_lines(write_jsonl: WriteJsonl) -> None:
    row = {"prompt": "Q", "chosen": "A", "rejected": "B"}
    path = write_jsonl(
        "twice.jsonl", [row, {"prompt": "other", "chosen": "x", "rejected": "y"}, row]
    )
    with pytest.raises(DataError, match=where(path, 3, "id") + ".*first on line 1.*add an id"):
        load_preferences(path)


def test_conversational_preferences_render_messages(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl(
        "chat.jsonl",
        [
            {
                "id": "c1",
                "prompt": [{"role": "user", "content": "Hi?"}],
                "chosen": [{"role": "assistant", "content": "Hello."}],
                "rejected": [{"role": "assistant", "content": "Go away."}],
            }
        ],
    )
    (pref,) = load_preferences(path)
    assert (pref.prompt, pref.chosen, pref.rejected) == (
        "user: Hi?",
        "assistant: Hello.",
        "assistant: Go away.",
    )


def test_preference_columns_map_other_names_in_csv(write_text: WriteText) -> None:
    path = write_text(
        "prefs.csv",
        "pair,question,good,bad,p_good\nx1,Q,A,B,0.75\nx2,Q2,C,D,\n",
    )
    columns = PreferenceColumns(
        id="pair", prompt="question", chosen="good", rejected="bad", probability="p_good"
    )
    prefs = load_preferences(path, columns=columns)
    assert [(p.id, p.chosen, p.probability) for p in prefs] == [
        ("x1", "A", 0.75),
        ("x2", "C", None),
    ]


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"prompt": "Q", "rejected": "B"}, "chosen", "missing required field 'chosen'"),
        ({"prompt": "Q", "chosen": "A", "rejected": 3}, "rejected", "rejected must be a string"),
        (
            {"prompt": "Q", "chosen": "A", "rejected": "B", "probability": 1.5},
            "probability",
            r"probability must lie in \[0, 1\], got 1.5",
        ),
        (
            {"prompt": "Q", "chosen": "A", "rejected": "B", "probability": "high"},
            "probability",
            "probability must be a number in",
        ),
        (
            {"prompt": "Q", "chosen": "A", "rejected": "B", "probability": True},
            "probability",
            "probability must be a number in",
        ),
    ],
)
def test_a_bad_preference_row_names_file_line_and_field(
    write_jsonl: WriteJsonl, row: dict[str, object], field: str, message: str
) -> None:
    good = {"prompt": "Q0", "chosen": "A0", "rejected": "B0"}
    path = write_jsonl("bad.jsonl", [good, row])
    with pytest.raises(DataError, match=where(path, 2, field) + message) as caught:
        load_preferences(path)
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), 2, field)


def test_preferences_from_parquet_name_the_row(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "prefs.parquet",
        [
            {"id": "a", "prompt": "Q", "chosen": "A", "rejected": "B", "probability": 0.8},
            {"id": "b", "prompt": "Q", "chosen": "A", "rejected": "B", "probability": -0.1},
        ],
    )
    with pytest.raises(DataError, match=where(path, 2, "probability")):
        load_preferences(path)
    write_parquet(path, [{"id": "a", "prompt": "Q", "chosen": "A", "rejected": "B"}])
    assert load_preferences(path)[0].id == "a"


def test_an_empty_preference_file_is_an_error(write_text: WriteText) -> None:
    path = write_text("empty.jsonl", "\n")
    with pytest.raises(DataError, match=where(path) + "file holds no rows"):
        load_preferences(path)


def test_preferences_become_verdicts_with_the_probability_as_score(
    write_jsonl: WriteJsonl,
) -> None:
    path = write_jsonl(
        "prefs.jsonl",
        [
            {"id": "p1", "prompt": "Q", "chosen": "A", "rejected": "B", "probability": 0.3},
            {"id": "p2", "prompt": "Q", "chosen": "C", "rejected": "D"},
        ],
    )
    v1, v2 = preference_verdicts(load_preferences(path), judge="rm")
    assert (v1.judge, v1.axis, v1.score, v1.label, v1.probability) == (
        "rm",
        "preference",
        0.3,
        "rejected",
        0.3,
    )
    assert (v2.score, v2.label, v2.probability) == (1.0, "chosen", None)


# -- per-row verdicts ----------------------------------------------------------------


def test_verdicts_take_scores_labels_and_errors(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl(
        "training.jsonl",
        [
            {"id": "a", "score": 0.8, "reason": "fine"},
            {"id": "b", "score": 0.2, "cohort": "harm", "axis": "honesty"},
            {"id": "c", "label": "PASS"},
            {"id": "d", "label": False, "checkpoint": "step-100"},
            {"id": "e", "label": "B is better", "probability": 0.4},
            {"id": "f", "error": "timeout"},
            {"id": 7, "score": "0.5"},
        ],
    )
    verdicts = load_verdicts(path, judge="gpt-4o", axis="criteria")
    by_id = {v.id: v for v in verdicts}
    assert (by_id["a"].label, by_id["a"].score, by_id["a"].reason) == ("pass", 0.8, "fine")
    assert (by_id["b"].label, by_id["b"].cohort, by_id["b"].axis) == ("fail", "harm", "honesty")
    assert (by_id["c"].label, by_id["c"].score) == ("pass", 1.0)
    assert (by_id["d"].label, by_id["d"].score, by_id["d"].checkpoint) == ("fail", 0.0, "step-100")
    assert (by_id["e"].label, by_id["e"].score, by_id["e"].probability) == (
        "B is better",
        None,
        0.4,
    )
    assert (by_id["f"].status, by_id["f"].error, by_id["f"].score) == ("error", "timeout", None)
    assert (by_id["7"].score, by_id["7"].label) == (0.5, "pass")
    assert {v.judge for v in verdicts} == {"gpt-4o"}
    assert by_id["a"].axis == "criteria"


def test_the_threshold_turns_scores_into_labels(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl("t.jsonl", [{"id": "a", "score": 0.6}])
    assert load_verdicts(path, threshold=0.7)[0].label == "fail"


def test_verdict_columns_map_other_names_in_csv(write_text: WriteText) -> None:
    path = write_text("v.csv", "item,grade,why\nq1,0.9,good\nq2,,\n")
    columns = VerdictColumns(id="item", score="grade", reason="why")
    with pytest.raises(DataError, match=where(path, 3, "score") + "row has no verdict.*'grade'"):
        load_verdicts(path, columns=columns)


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"score": 0.4}, "id", "missing required field 'id'"),
        ({"id": "x", "reason": "no verdict"}, "score", "row has no verdict"),
        ({"id": "x", "score": "abc"}, "score", "score must be a number in"),
        ({"id": "x", "score": 2}, "score", r"score must lie in \[0, 1\]"),
        ({"id": "x", "label": ["pass"]}, "label", "label must be a string"),
        (
            {"id": "x", "error": "boom", "score": 0.3},
            "error",
            "a row with an error must have no score",
        ),
        ({"id": {"a": 1}, "score": 0.3}, "id", "id must be a string or an integer"),
    ],
)
def test_a_bad_verdict_row_names_file_line_and_field(
    write_jsonl: WriteJsonl, row: dict[str, object], field: str, message: str
) -> None:
    path = write_jsonl("bad.jsonl", [{"id": "ok", "score": 1}, row])
    with pytest.raises(DataError, match=where(path, 2, field) + message) as caught:
        load_verdicts(path)
    assert (caught.value.line, caught.value.field) == (2, field)


def test_the_same_item_twice_is_refused_but_other_checkpoints_and_axes_are_not(
    write_jsonl: WriteJsonl,
) -> None:
    path = write_jsonl(
        "v.jsonl",
        [
            {"id": "a", "score": 1, "checkpoint": "s1"},
            {"id": "a", "score": 1, "checkpoint": "s2"},
            {"id": "a", "score": 1, "checkpoint": "s1", "axis": "tone"},
        ],
    )
    assert len(load_verdicts(path)) == 3
    path = write_jsonl("v2.jsonl", [{"id": "a", "score": 1}, {"id": "a", "label": "fail"}])
    with pytest.raises(DataError, match=where(path, 2, "id") + "id 'a' repeats: first on line 1"):
        load_verdicts(path)


def test_verdicts_from_parquet(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "v.parquet",
        [{"id": "a", "score": 0.9, "label": None}, {"id": "b", "score": None, "label": "fail"}],
    )
    assert [(v.id, v.label, v.score) for v in load_verdicts(path)] == [
        ("a", "pass", 0.9),
        ("b", "fail", 0.0),
    ]


def test_a_missing_file_and_an_unknown_suffix_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_verdicts(tmp_path / "nope.jsonl")
    other = tmp_path / "v.txt"
    other.write_text("x")
    with pytest.raises(DataError, match=r"unknown file type \('.txt'\)"):
        load_verdicts(other)


def test_a_verdict_needs_a_score_or_a_label() -> None:
    with pytest.raises(ValueError, match="needs a score or a label"):
        JudgeVerdict(id="a")
    with pytest.raises(ValueError, match="carries no score"):
        JudgeVerdict(id="a", status="error", score=0.5)
