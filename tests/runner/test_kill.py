"""A run killed with SIGKILL midway resumes without recomputing, losing or duplicating."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from tests.support.openai_server import OpenAIServer

ROWS = 40


def write_dataset(path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(ROWS):
            row = {
                "id": f"r{i:02d}",
                "cohort": "honesty",
                "input": "Q?",
                "output": f"ANSWER-{i:02d}",
            }
            handle.write(json.dumps(row) + "\n")


def run_eval(tmp_path: Path, server: OpenAIServer, log: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HELDOUT_DB_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "HELDOUT_EVAL_JUDGE": f"openai:test-model@{server.base_url}",
        "OPENAI_API_KEY": "sk-test",
    }
    config = tmp_path / "heldout.toml"
    config.write_text(f'[endpoints."{server.base_url}"]\nconcurrency = 4\n', encoding="utf-8")
    with (tmp_path / log).open("wb") as stderr:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "heldout",
                "eval",
                str(tmp_path / "data.jsonl"),
                "--config",
                str(config),
                "--run-id",
                "killme",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def stored_scores(db: Path) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    try:
        with closing(sqlite3.connect(db)) as conn:
            return conn.execute("SELECT sample_key, status FROM scores").fetchall()
    except sqlite3.OperationalError:  # the child is still creating the schema
        return []


def answers_asked(server: OpenAIServer) -> list[str]:
    asked = []
    for record in server.log:
        if record.body and record.path.endswith("/chat/completions"):
            text = record.body["messages"][-1]["content"]
            asked.append(text.split("ANSWER-", 1)[1][:2])
    return asked


def test_sigkill_midway_then_rerun_recomputes_nothing_loses_nothing(tmp_path: Path) -> None:
    write_dataset(tmp_path / "data.jsonl")
    db = tmp_path / "store.db"
    with OpenAIServer(latency_ms=150) as server:
        proc = run_eval(tmp_path, server, "first.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(stored_scores(db)) >= 12:
                break
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL

        before = stored_scores(db)
        assert 12 <= len(before) < ROWS, "the kill must land midway"
        finished = {key for key, status in before if status == "ok"}
        first_asked = answers_asked(server)
        server.reset()

        rerun = run_eval(tmp_path, server, "rerun.log")
        assert rerun.wait(timeout=120) == 0, (tmp_path / "rerun.log").read_text()
        asked_again = answers_asked(server)

    after = stored_scores(db)
    keys = [key for key, _ in after]
    assert len(keys) == len(set(keys)) == ROWS, "no duplicates, none lost"
    assert all(status == "ok" for _, status in after)
    # No finished score was recomputed: the rerun asked only about rows without one.
    assert not {f"r{n}" for n in asked_again} & finished
    # And each row was asked about at most once across both runs, except the calls
    # that were in flight (at most the concurrency limit) when the kill landed.
    assert len(first_asked) + len(asked_again) <= ROWS + 4
