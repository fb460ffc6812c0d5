"""The command line, run as a user runs it: a subprocess against real components."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
