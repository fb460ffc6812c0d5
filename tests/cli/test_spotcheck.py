"""``heldout spotcheck``, run as a user runs it: two judges' eval runs and an imported
training-judge file, a sample drawn, labelled by a person, and scored."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from tests.cli.test_cli import heldout
from tests.support.openai_server import OpenAIServer

ROWS = [
    {"id": f"r{i}", "cohort": ["help", "safe"][i % 2], "input": "Q?", "output": output}
    for i, output in enumerate(["good", "poor", "ok", "good", "poor", "ok", "good", "good"])
]


def output_of(body: dict[str, Any]) -> str:
    found = re.search(r"<output>\n(.*)\n</output>", body["messages"][-1]["content"], re.S)
    assert found is not None
    return found.group(1)


def strict_judge(body: dict[str, Any]) -> str:
    return "Yes" if output_of(body) == "good" else "No"


def lenient_judge(body: dict[str, Any]) -> str:
    return "No" if output_of(body) == "poor" else "Yes"


def table_rows(stdout: str) -> list[list[str]]:
    """The body rows of the Rich tables in ``stdout``, as stripped cells."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in stdout.splitlines()
        if line.startswith("│")
    ]


def eval_run(data: Path, server: OpenAIServer, name: str, cwd: Path) -> str:
    env = {"HELDOUT_EVAL_JUDGE": f"openai:{name}@{server.base_url}", "OPENAI_API_KEY": "sk-x"}
    result = heldout("eval", str(data), cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    found = re.search(r"run (\S+):", result.stdout)
    assert found is not None, result.stdout
    return found.group(1)


def three_judges(folder: Path) -> tuple[str, str, Path]:
    """The ROWS judged by a strict and a lenient judge (two stored runs), and the
    training judge's verdicts file, which passes everything, with a reason."""
    data = folder / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    training = folder / "training.jsonl"
    training.write_text(
        "".join(
            json.dumps({"id": r["id"], "label": "pass", "reason": "fine by me"}) + "\n"
            for r in ROWS
        ),
        encoding="utf-8",
    )
    with (
        OpenAIServer(top_logprobs=None, responder=strict_judge) as strict,
        OpenAIServer(top_logprobs=None, responder=lenient_judge) as lenient,
    ):
        run_a = eval_run(data, strict, "strict", folder)
        run_b = eval_run(data, lenient, "lenient", folder)
    return run_a, run_b, training


def test_spotcheck_sample_label_and_score(tmp_path: Path) -> None:
    run_a, run_b, training = three_judges(tmp_path)
    runs = ["--run", run_a, "--run", run_b, "--verdicts", str(training), "--evaluator", "criteria"]
    sample = tmp_path / "sample.csv"
    drawn = heldout("spotcheck", "sample", *runs, "--n", "8", "--out", str(sample), cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr
    assert "spot-check sample: 8 of 8 items" in drawn.stdout
    assert "training=pass" in drawn.stdout  # the strata name the verdict patterns
    with sample.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8
    assert not any(name.startswith("verdict:") for name in rows[0])  # hidden by default

    for row in rows:  # the person agrees with the strict judge
        row["human_label"] = "yes" if row["output"] == "good" else "no"
    with sample.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    scored = heldout("spotcheck", "score", str(sample), *runs, cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    assert "8 labelled, 0 unlabelled, 0 skipped" in scored.stdout
    accuracy = {(cells[0], cells[1]): cells[4] for cells in table_rows(scored.stdout)}
    strict_name = next(judge for judge, _ in accuracy if judge.startswith("openai:strict"))
    assert accuracy[(strict_name, "*")].startswith("100%")
    assert accuracy[("training", "*")].startswith("50%")  # 4 of 8 outputs are good


def test_a_bad_label_is_named_by_file_line_and_field(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:2]), encoding="utf-8")
    with OpenAIServer(top_logprobs=None, responder=lambda b: "Yes") as server:
        run = eval_run(data, server, "judge", tmp_path)
    sample = tmp_path / "sample.jsonl"
    drawn = heldout(
        "spotcheck", "sample", "--run", run, "--n", "2", "--out", str(sample), cwd=tmp_path
    )
    assert drawn.returncode == 0, drawn.stderr
    lines = [json.loads(line) for line in sample.read_text(encoding="utf-8").splitlines()]
    lines[0]["human_label"], lines[1]["human_label"] = "pass", "great"
    sample.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    scored = heldout("spotcheck", "score", str(sample), "--run", run, cwd=tmp_path)
    assert scored.returncode == 2
    assert f"{sample}:2 field 'human_label'" in scored.stderr.replace("\n", "")
    assert "'great'" in scored.stderr


def test_an_unknown_run_is_named(tmp_path: Path) -> None:
    result = heldout(
        "spotcheck", "sample", "--run", "nope", "--out", str(tmp_path / "s.csv"), cwd=tmp_path
    )
    assert result.returncode == 2
    assert "no run 'nope'" in result.stderr
