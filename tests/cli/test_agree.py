"""``heldout agree``, run as a user runs it: two judges' eval runs and an imported
training-judge file compared item by item."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.cli.test_cli import heldout
from tests.cli.test_spotcheck import ROWS, eval_run, table_rows, three_judges
from tests.support.openai_server import OpenAIServer


def test_agree_reports_rates_per_cohort_and_writes_the_disagreements(tmp_path: Path) -> None:
    run_a, run_b, training = three_judges(tmp_path)
    out = tmp_path / "disagreements.csv"
    result = heldout(
        "agree",
        *("--run", run_a, "--run", run_b, "--verdicts", str(training)),
        *("--evaluator", "criteria", "--show", "3", "--out", str(out)),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr

    # strict passes only "good", lenient fails only "poor", training passes all: they
    # disagree on the "ok" and "poor" outputs, two of the four items of each cohort.
    rows = table_rows(result.stdout)
    rates = {(cells[0], cells[1]): cells[5] for cells in rows if len(cells) == 8}
    assert rates[("criteria", "help")].startswith("50%")
    assert rates[("criteria", "safe")].startswith("50%")
    assert rates[("criteria", "*")].startswith("50%")
    assert "3 of 4 disagreements" in result.stdout
    assert "fine by me" in result.stdout  # each judge's reason is shown
    assert "wrote 4 disagreements" in result.stdout

    with out.open(encoding="utf-8", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert sorted(row["id"] for row in written) == ["r1", "r2", "r4", "r5"]
    assert all(row["label:training"] == "pass" for row in written)
    strict_label = next(name for name in written[0] if name.startswith("label:openai:strict"))
    assert {row["id"]: row[strict_label] for row in written}["r2"] == "fail"
    assert all(row["reason:training"] == "fine by me" for row in written)


def test_agree_needs_two_judges(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:2]), encoding="utf-8")
    with OpenAIServer(top_logprobs=None, responder=lambda b: "Yes") as server:
        run = eval_run(data, server, "judge", tmp_path)
    result = heldout("agree", "--run", run, cwd=tmp_path)
    assert result.returncode == 2
    assert "two" in result.stderr


def test_agree_refuses_an_unknown_level(tmp_path: Path) -> None:
    result = heldout("agree", "--run", "a", "--run", "b", "--level", "loud", cwd=tmp_path)
    assert result.returncode == 2
    assert "--level must be one of nominal, ordinal, interval, ratio" in result.stderr
