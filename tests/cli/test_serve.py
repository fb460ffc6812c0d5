"""``heldout ingest`` and ``heldout serve``, run as a user runs them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from tests.cli.test_cli import heldout
from tests.support.openai_server import OpenAIServer
from tests.support.otel import agent_trace, provider, recorded
from tests.tracing.test_classify import QUESTION, refund_judge
from tests.tracing.test_otlp import otlp_json

RULES = "cohorts:\n  - name: refunds\n    match:\n      - {field: input, contains: refund}\n"


def test_ingest_an_exported_file_into_a_cohort(tmp_path: Path) -> None:
    rules = tmp_path / "cohorts.yaml"
    rules.write_text(RULES, encoding="utf-8")
    lines = [otlp_json(recorded(q, "ok")) for q in ("a refund please", "hello", "refund again")]
    exported = tmp_path / "traces.jsonl"
    exported.write_text("".join(json.dumps(doc) + "\n" for doc in lines), encoding="utf-8")
    done = heldout("ingest", str(exported), "--cohorts", str(rules), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "stored 9 spans of 3 traces" in done.stdout
    assert "cohort refunds: 2 of them" in done.stdout

    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(lines[0]) + "\n{oops\n", encoding="utf-8")
    failed = heldout("ingest", str(broken), cwd=tmp_path)
    assert failed.returncode == 2
    assert "broken.jsonl:2: not valid JSON" in failed.stderr


def test_ingest_with_a_classifier_judges_the_traces(tmp_path: Path) -> None:
    with OpenAIServer(top_logprobs=None, responder=refund_judge) as server:
        rules = tmp_path / "cohorts.yaml"
        rules.write_text(
            "cohorts:\n  - name: refunds\n    classify:\n"
            f"      question: {QUESTION}\n      judge: openai:judge@{server.base_url}\n",
            encoding="utf-8",
        )
        questions = ("Refund my order", "What are your hours?", "I need a refund, please")
        exported = tmp_path / "traces.jsonl"
        exported.write_text(
            "".join(json.dumps(otlp_json(recorded(q, "ok"))) + "\n" for q in questions),
            encoding="utf-8",
        )
        env = {"OPENAI_API_KEY": "sk-test"}
        done = heldout("ingest", str(exported), "--cohorts", str(rules), cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        assert "classifier of refunds: 3 judged, 2 let in, 0 errors, 0 skipped" in done.stdout
        assert "cohort refunds: 2 of them" in done.stdout
        assert server.requests == 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_receives_sdk_traces_and_shows_the_cohort(tmp_path: Path) -> None:
    rules = tmp_path / "cohorts.yaml"
    rules.write_text(RULES, encoding="utf-8")
    port = free_port()
    token = "cli-token-0123456789abcdef"
    server = subprocess.Popen(
        [sys.executable, "-m", "heldout", "serve", "--port", str(port), "--cohorts", str(rules)],
        cwd=tmp_path,
        env={**os.environ, "HELDOUT_TOKEN": token, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/runs", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, "heldout serve did not start"
            time.sleep(0.2)
        exporter = OTLPSpanExporter(
            endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {token}"}
        )
        tracer_provider = provider(exporter)
        agent_trace(tracer_provider, "I need a refund", "Done.")
        tracer_provider.shutdown()
        page = httpx.get(f"{url}/cohorts/refunds")
        assert page.status_code == 200
        assert "I need a refund" in page.text
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in out
    assert "token (made" not in out  # the token came from HELDOUT_TOKEN
