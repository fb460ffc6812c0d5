"""The command line, run as a user runs it: a subprocess against real components."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.openai_server import OpenAIServer


def heldout(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "heldout", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_eval_prints_a_cohort_table_and_a_rerun_is_free(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    rows = [
        {
            "id": f"r{i}",
            "cohort": ["helpfulness", "[bold]harm[/bold]"][i % 2],
            "input": "Q?",
            "output": f"A{i}",
        }
        for i in range(6)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with OpenAIServer() as server:
        env = {
            "HELDOUT_EVAL_JUDGE": f"openai:test-model@{server.base_url}",
            "OPENAI_API_KEY": "sk-test",
        }
        first = heldout("eval", str(data), cwd=tmp_path, env=env)
        assert first.returncode == 0, first.stderr
        assert "helpfulness" in first.stdout
        assert "[bold]harm[/bold]" in first.stdout  # user text is printed, not interpreted
        assert "6 scores computed" in first.stdout
        assert server.requests == 6
        second = heldout("eval", str(data), cwd=tmp_path, env=env)
        assert second.returncode == 0, second.stderr
        assert "0 scores computed, 6 resumed" in second.stdout
        assert "0 judge calls" in second.stdout
        assert server.requests == 6
    assert (tmp_path / ".heldout" / "heldout.db").exists()


def test_bad_input_names_file_line_and_field(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"id": "a", "input": "Q?"}\n{"id": "b"}\n', encoding="utf-8")
    result = heldout(
        "eval",
        str(data),
        cwd=tmp_path,
        env={"HELDOUT_EVAL_JUDGE": "openai:m@http://127.0.0.1:9/v1"},
    )
    assert result.returncode == 2
    assert f"{data}:2" in result.stderr
    assert "input" in result.stderr


def test_doctor_names_what_is_missing_with_the_fix(tmp_path: Path) -> None:
    env = {"HELDOUT_EVAL_JUDGE": "openai:m@http://127.0.0.1:9/v1"}
    result = heldout("doctor", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "did not answer" in result.stdout
    assert "start the server" in result.stdout


def write_sweep(folder: Path, judge_url: str) -> Path:
    prompts = [{"id": f"p{i}", "cohort": ["helpfulness", "harmlessness"][i % 2], "input": f"Q{i}?"}
               for i in range(8)]  # fmt: skip
    (folder / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    for name in ("sft", "step-1"):
        lines = [
            json.dumps({"id": p["id"], "output": f"{name} answers {p['id']}"}) for p in prompts
        ]
        (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    sweep = folder / "sweep.yaml"
    sweep.write_text(
        "name: cli-sweep\n"
        "dataset: {path: prompts.jsonl}\n"
        f"eval_judge: openai:test-model@{judge_url}\n"
        "evaluators: [{type: criteria, criteria: The answer is right.}]\n"
        "baseline: sft\n"
        "checkpoints:\n"
        "  - {name: sft, outputs: sft.jsonl, params: {step: 0}}\n"
        "  - {name: step-1, outputs: step-1.jsonl, params: {step: 1}}\n"
        "statistics: {n_resamples: 199}\n"
        "selection: {objective: {metrics: [criteria]}}\n"
    )
    return sweep


ENV_KEY = {"OPENAI_API_KEY": "sk-test"}


def test_regress_prints_the_table_and_the_choice_and_writes_json_csv_html(
    tmp_path: Path,
) -> None:
    with OpenAIServer() as server:
        sweep = write_sweep(tmp_path, server.base_url)
        env = {"OPENAI_API_KEY": "sk-test"}
        first = heldout("regress", str(sweep), "--out", "out", cwd=tmp_path, env=env)
        assert first.returncode == 0, first.stderr
        assert server.requests == 16  # 8 prompts x 2 checkpoints, one judge call each
        assert "checkpoint to ship" in first.stdout
        assert "step-1" in first.stdout
        assert "16 scores computed" in first.stdout
        results = json.loads((tmp_path / "out" / "results.json").read_text())
        assert results["baseline"] == "sft"
        assert {r["checkpoint"] for r in results["table"]} == {"sft", "step-1"}
        assert results["selection"]["chosen"] in {"sft", "step-1"}
        csv_lines = (tmp_path / "out" / "table.csv").read_text().splitlines()
        assert csv_lines[0].startswith("checkpoint,cohort,metric")
        assert len(csv_lines) == 1 + len(results["table"])
        assert "<svg" in (tmp_path / "out" / "report.html").read_text()
        second = heldout("regress", str(sweep), "--out", "out", cwd=tmp_path, env=env)
        assert second.returncode == 0, second.stderr
        assert "0 scores computed, 16 resumed" in second.stdout
        assert server.requests == 16


def test_regress_names_the_line_of_a_bad_sweep(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "http://127.0.0.1:9/v1")
    sweep.write_text(sweep.read_text().replace("baseline: sft", "baseline: sft\nbogus: 1"))
    result = heldout("regress", str(sweep), cwd=tmp_path)
    assert result.returncode == 2
    assert "sweep.yaml:6" in result.stderr
    assert "bogus" in result.stderr


def write_candidates(folder: Path) -> Path:
    """Two prompts with two candidate responses each, the first the better one."""
    rows = [
        {"id": "p1", "prompt": "Boil an egg?", "responses": ["A fine answer.", "No."]},
        {"id": "p2", "prompt": "Capital of France?", "responses": ["Paris.", "Lyon."]},
    ]
    data = folder / "candidates.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


def test_label_writes_trl_columns_and_a_rerun_is_free(tmp_path: Path) -> None:
    data = write_candidates(tmp_path)
    with OpenAIServer(responder=lambda body: "A", top_logprobs=None) as server:
        judge = f"openai:labeler@{server.base_url}"
        args = ("label", str(data), "--judge", judge, "--keep-low-confidence", "--out", "l.jsonl")
        first = heldout(*args, cwd=tmp_path, env={"OPENAI_API_KEY": "sk-test"})
        assert first.returncode == 0, first.stderr
        assert "2 labels (2 low-confidence, kept and flagged), 0 errors" in first.stdout
        # The labeler always answers "A", the first position: never consistent.
        assert "position consistency: 0% of 2 labels" in first.stdout
        assert server.requests == 4
        labels = [json.loads(x) for x in (tmp_path / "l.jsonl").read_text().splitlines()]
        assert [label["prompt"] for label in labels] == ["Boil an egg?", "Capital of France?"]
        assert all(label["low_confidence"] and label["labeler"] == judge for label in labels)
        again = heldout(*args, cwd=tmp_path, env={"OPENAI_API_KEY": "sk-test"})
        assert again.returncode == 0, again.stderr
        assert server.requests == 4


def test_label_reports_a_labeler_that_follows_the_content_as_consistent(tmp_path: Path) -> None:
    data = write_candidates(tmp_path)

    def prefers_the_good_answer(body: dict[str, Any]) -> str:
        text = body["messages"][-1]["content"]
        good, bad = ("Paris.", "Lyon.") if "Paris." in text else ("A fine answer.", "No.")
        return "A" if text.rindex(good) < text.rindex(bad) else "B"

    with OpenAIServer(responder=prefers_the_good_answer, top_logprobs=None) as server:
        args = ("label", str(data), "--judge", f"openai:labeler@{server.base_url}")
        result = heldout(*args, cwd=tmp_path, env={"OPENAI_API_KEY": "sk-test"})
    assert result.returncode == 0, result.stderr
    assert "position consistency: 100% of 2 labels" in result.stdout
    labels = [json.loads(x) for x in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert [label["chosen"] for label in labels] == ["A fine answer.", "Paris."]


def test_regress_shows_the_overfitting_flag_when_the_sweep_asks_for_it(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        sweep = write_sweep(tmp_path, server.base_url)
        with sweep.open("a") as f:
            f.write(f"training_judge: openai:training-model@{server.base_url}\noverfitting: {{}}\n")
        result = heldout("regress", str(sweep), "--out", "out", cwd=tmp_path, env=ENV_KEY)
        assert result.returncode == 0, result.stderr
        assert server.requests == 32  # the same 16 outputs, judged by each judge
        assert "judge overfitting against sft" in result.stdout
        exported = json.loads((tmp_path / "out" / "results.json").read_text())["overfitting"]
        assert [c["checkpoint"] for c in exported["checkpoints"]] == ["step-1"]
        assert "Judge overfitting" in (tmp_path / "out" / "report.html").read_text()
