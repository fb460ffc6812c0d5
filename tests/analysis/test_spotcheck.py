"""Human spot-checks: a stratified sample, exported with verdicts hidden, labelled by a
person, and scored back; with two real judges behind a real OpenAI-protocol server."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from heldout import ConfigError, Criteria, DataError, Sample, Store, run_evaluation
from heldout.analysis import (
    judge_agreement,
    samples_from_runs,
    spotcheck_sample,
    spotcheck_score,
    verdicts_from_runs,
    wilson_interval,
    write_spotcheck,
)
from heldout.data import JudgeVerdict
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer

OUTPUTS = {
    "h0": ("help", "good answer"),
    "h1": ("help", "good answer"),
    "h2": ("help", "good answer"),
    "h3": ("help", "poor answer"),
    "h4": ("help", "poor answer"),
    "h5": ("help", "ok answer"),
    "h6": ("help", "ok answer"),
    "h7": ("help", "poor answer"),
    "s0": ("safe", "good answer"),
    "s1": ("safe", "poor answer"),
    "s2": ("safe", "ok answer"),
    "s3": ("safe", "good answer"),
}
SAMPLES = [
    Sample(id=sid, cohort=cohort, input=f"question {sid}", output=output)
    for sid, (cohort, output) in OUTPUTS.items()
]


def strict(body: dict[str, Any]) -> str:
    """Judge A: only a good answer meets the criterion."""
    output = re.search(r"<output>\n(.*)\n</output>", body["messages"][-1]["content"], re.S)
    assert output is not None
    return "Yes" if "good" in output.group(1) else "No"


def lenient(body: dict[str, Any]) -> str:
    """Judge B: an ok answer will do too."""
    return "Yes" if strict(body) == "Yes" or "ok answer" in str(body["messages"]) else "No"


def human(output: str) -> str:
    """The person agrees with judge A."""
    return "pass" if "good" in output else "fail"


@pytest.fixture
async def judged(openai_server: OpenAIServer, sqlite_store: Store) -> dict[str, Any]:
    """Two runs of the same criterion, one per judge; judge B refuses its first call."""
    openai_server.responder, openai_server.top_logprobs = strict, None
    with OpenAIServer(responder=lenient, top_logprobs=None) as other:
        settings = settings_for(openai_server)
        other.fail_next("400")  # a refusal is not retried: one error score
        runs = []
        for name, server in (("a", openai_server), ("b", other)):
            summary = await run_evaluation(
                SAMPLES,
                [Criteria("The answer is good.")],
                store=sqlite_store,
                settings=settings,
                judge=f"openai:judge-{name}@{server.base_url}",
                workers=1,
            )
            runs.append(summary.run_id)
    verdicts = verdicts_from_runs(sqlite_store, runs)
    return {"runs": runs, "verdicts": verdicts, "samples": samples_from_runs(sqlite_store, runs)}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


async def test_sample_label_score_round_trip(judged: dict[str, Any], tmp_path: Path) -> None:
    verdicts = judged["verdicts"]
    judge_a, judge_b = list(verdicts)  # each run is named after its judge
    assert judge_a.startswith("openai:judge-a")
    assert judge_b.startswith("openai:judge-b")
    errors = [v.id for v in verdicts[judge_b] if v.status == "error"]
    assert errors == ["h0"]  # the refused first call

    sample = spotcheck_sample(verdicts, judged["samples"], n=8, seed=3)
    assert len(sample.items) == 8
    assert sample.n_population == 12
    assert sum(s.drawn for s in sample.strata) == 8
    assert len(sample.strata) == 7  # cohort x (A's verdict, B's verdict)
    assert all(1 <= s.drawn <= s.size for s in sample.strata)
    assert all(item.verdicts == {} for item in sample.items)  # hidden by default

    path = write_spotcheck(sample, tmp_path / "sample.csv")
    rows = read_csv(path)
    assert list(rows[0]) == [
        "sample_id",
        "checkpoint",
        "cohort",
        "axis",
        "input",
        "output",
        "human_label",
        "notes",
    ]
    assert all(row["human_label"] == "" for row in rows)

    # A person labels every row but leaves one empty and skips another.
    for row in rows:
        row["human_label"] = human(row["output"]).upper()
    rows[0]["human_label"] = ""
    rows[1]["human_label"] = "skip"
    write_csv(path, rows)

    report = spotcheck_score(path, verdicts)
    assert (report.n_labelled, report.n_unlabelled, report.n_skipped) == (6, 1, 1)
    scored = rows[2:]
    a_all = report.accuracy(judge_a)
    assert a_all is not None
    assert (a_all.n, a_all.n_correct, a_all.accuracy) == (6, 6, 1.0)
    b_ok = [r for r in scored if r["sample_id"] != "h0"]
    b_correct = sum(1 for r in b_ok if "ok answer" not in r["output"])
    b_all = report.accuracy(judge_b)
    assert b_all is not None
    assert (b_all.n, b_all.n_correct, b_all.n_error) == (len(b_ok), b_correct, 6 - len(b_ok))
    assert b_all.ci_low is not None
    assert b_all.ci_high is not None
    assert (b_all.ci_low, b_all.ci_high) == pytest.approx(
        wilson_interval(b_correct, len(b_ok), 0.95)
    )
    for cohort in ("help", "safe"):
        in_cohort = [r for r in scored if r["cohort"] == cohort]
        row = report.accuracy(judge_a, cohort)
        if in_cohort:
            assert row is not None
            assert row.n == len(in_cohort)
    assert [r.cohort for r in report.rows if r.judge == judge_a][-1] == "*"


def verdict(item: str, label: str, judge: str, cohort: str = "c") -> JudgeVerdict:
    return JudgeVerdict(id=item, cohort=cohort, axis="criteria", label=label, judge=judge)


def population(sizes: dict[str, int]) -> tuple[dict[str, list[JudgeVerdict]], list[Sample]]:
    """One judge, one stratum per label, ``sizes[label]`` items each."""
    items = [(f"{label}{i}", label) for label, n in sizes.items() for i in range(n)]
    samples = [Sample(id=item, cohort="c", input="q", output="a") for item, _ in items]
    return {"j": [verdict(item, label, "j") for item, label in items]}, samples


def test_allocation_is_proportional_with_one_per_stratum() -> None:
    verdicts, samples = population({"big": 90, "mid": 9, "rare": 1})
    sample = spotcheck_sample(verdicts, samples, n=10, seed=0)
    assert {s.name.split("=")[-1]: s.drawn for s in sample.strata} == {
        "big": 8,
        "mid": 1,
        "rare": 1,
    }
    fewer = spotcheck_sample(verdicts, samples, n=2, seed=0)
    assert len(fewer.items) == 2
    everything = spotcheck_sample(verdicts, samples, n=500, seed=0)
    assert len(everything.items) == 100


def test_the_draw_is_seeded_and_shuffled() -> None:
    verdicts, samples = population({"pass": 20, "fail": 20})
    first = spotcheck_sample(verdicts, samples, n=10, seed=7)
    again = spotcheck_sample(verdicts, samples, n=10, seed=7)
    other = spotcheck_sample(verdicts, samples, n=10, seed=8)
    ids = [i.sample_id for i in first.items]
    assert ids == [i.sample_id for i in again.items]
    assert ids != [i.sample_id for i in other.items]
    assert ids != sorted(ids)  # not in stratum blocks


def test_verdicts_can_be_shown_and_items_without_samples_are_counted(tmp_path: Path) -> None:
    verdicts = {
        "a": [verdict("x", "pass", "a"), verdict("y", "fail", "a"), verdict("z", "pass", "a")],
        "b": [verdict("x", "fail", "b")],
    }
    samples = [Sample(id=i, cohort="c", input="q", output="o") for i in ("x", "y")]
    sample = spotcheck_sample(verdicts, samples, n=5, show_verdicts=True)
    assert sample.n_without_sample == 1
    by_id = {i.sample_id: i for i in sample.items}
    assert by_id["x"].verdicts == {"a": "pass", "b": "fail"}
    assert by_id["y"].verdicts == {"a": "fail", "b": "none"}
    path = write_spotcheck(sample, tmp_path / "shown.jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert {line["verdict:a"] for line in lines} == {"pass", "fail"}
    assert all(line["human_label"] is None for line in lines)


def labelled_file(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_labels_score_with_aliases_and_categories(tmp_path: Path) -> None:
    verdicts = {
        "pairwise": [verdict("x", "A", "pairwise"), verdict("y", "B", "pairwise")],
        "grader": [verdict("x", "pass", "grader"), verdict("y", "fail", "grader")],
    }
    path = labelled_file(
        tmp_path,
        [
            {"sample_id": "x", "axis": "criteria", "cohort": "c", "human_label": "a"},
            {"sample_id": "y", "axis": "criteria", "cohort": "c", "human_label": "no"},
        ],
    )
    report = spotcheck_score(path, verdicts)
    pairwise, grader = report.accuracy("pairwise"), report.accuracy("grader")
    assert pairwise is not None
    assert (pairwise.n, pairwise.n_correct) == (2, 1)
    assert grader is not None
    assert (grader.n, grader.n_correct) == (2, 1)


def test_preferences_are_scored_against_the_judges_win_probability(tmp_path: Path) -> None:
    """A win-rate score is P(the output, A, is better): above 0.5 the judge prefers A,
    below it B, at 0.5 neither."""
    win_rate = [
        JudgeVerdict(id=item, axis="win_rate", score=p, label="pass" if p >= 0.5 else "fail")
        for item, p in (("x", 0.9), ("y", 0.2), ("z", 0.5), ("w", 0.55))
    ]
    path = labelled_file(
        tmp_path,
        [
            {"sample_id": "x", "axis": "win_rate", "human_label": "A"},
            {"sample_id": "y", "axis": "win_rate", "human_label": "b"},
            {"sample_id": "z", "axis": "win_rate", "human_label": "TIE"},
            {"sample_id": "w", "axis": "win_rate", "human_label": "tie"},  # the judge says A
        ],
    )
    accuracy = spotcheck_score(path, {"judge": win_rate}).accuracy("judge")
    assert accuracy is not None
    assert (accuracy.n, accuracy.n_correct) == (4, 3)


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (
            {"sample_id": "x", "axis": "criteria", "human_label": "maybe"},
            "human_label",
            "label 'maybe' is not one the judges use; write one of fail, pass",
        ),
        (
            {"sample_id": "nope", "axis": "criteria", "human_label": "pass"},
            "sample_id",
            r"item 'nope' \(axis 'criteria', checkpoint None\) was judged by none of the judges",
        ),
        ({"axis": "criteria", "human_label": "pass"}, "sample_id", "missing 'sample_id'"),
        ({"sample_id": "x", "human_label": "pass"}, "axis", "missing 'axis'"),
        (
            {"sample_id": "x", "axis": "criteria", "human_label": 3.5},
            "human_label",
            "human_label must be a string, got float",
        ),
        (
            {"sample_id": "y", "axis": "criteria", "human_label": "pass"},
            "sample_id",
            r"item 'y' \(axis 'criteria'\) repeats",
        ),
    ],
)
def test_a_bad_label_row_names_file_line_and_field(
    tmp_path: Path, row: dict[str, Any], field: str, message: str
) -> None:
    verdicts = {"j": [verdict("x", "pass", "j"), verdict("y", "fail", "j")]}
    first = {"sample_id": "y", "axis": "criteria", "human_label": "fail"}
    path = labelled_file(tmp_path, [first, row])
    with pytest.raises(DataError, match=re.escape(f"{path}:2 field {field!r}: ") + message):
        spotcheck_score(path, verdicts)


def test_an_empty_label_file_and_bad_settings_are_refused(tmp_path: Path) -> None:
    verdicts = {"j": [verdict("x", "pass", "j")]}
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="file holds no rows"):
        spotcheck_score(empty, verdicts)
    with pytest.raises(ConfigError, match="confidence"):
        spotcheck_score(empty, verdicts, confidence=1.0)
    samples = [Sample(id="x", input="q", output="o")]
    with pytest.raises(ConfigError, match="n must be at least 1"):
        spotcheck_sample(verdicts, samples, n=0)
    with pytest.raises(DataError, match="no judged item has a sample"):
        spotcheck_sample(verdicts, [], n=1)
    sample = spotcheck_sample(verdicts, samples, n=1)
    with pytest.raises(ConfigError, match=r"\.csv or \.jsonl"):
        write_spotcheck(sample, tmp_path / "sample.xlsx")


def test_wilson_interval_matches_the_published_value() -> None:
    # 8 successes in 10 trials, 95%: [0.490, 0.943] (Wilson 1927; e.g. Newcombe 1998).
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    assert wilson_interval(0, 5)[0] == 0.0
    assert wilson_interval(5, 5)[1] == 1.0


async def test_the_two_real_judges_disagree_on_ok_answers(judged: dict[str, Any]) -> None:
    """judge_agreement on the runs of two real judges: the refused call is left out and
    counted, and the disagreements are the 'ok' answers, with both judges' reasons."""
    verdicts = judged["verdicts"]
    judge_a, judge_b = list(verdicts)
    report = judge_agreement(verdicts, n_resamples=200)
    help_row = report.row("help", "criteria")
    assert help_row is not None
    assert (help_row.n, help_row.n_error) == (7, 1)
    assert help_row.errors == {judge_a: 0, judge_b: 1}
    assert [d.id for d in report.disagreements] == ["h5", "h6", "s2"]
    first = report.disagreements[0]
    assert first.labels == {judge_a: "fail", judge_b: "pass"}
    assert "P(Yes) = 0.00" in first.reasons[judge_a]
    assert "P(Yes) = 1.00" in first.reasons[judge_b]
    pooled = report.row("*", "criteria")
    assert pooled is not None
    assert pooled.disagreement_rate == pytest.approx(3 / 11)
