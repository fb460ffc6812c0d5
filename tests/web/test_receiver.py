"""POST /v1/traces: real OTLP from the OpenTelemetry SDK, the token, limits, bad requests."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import httpx2 as httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from heldout.tracing import CohortRules, classifier_status, cohort_dataset, cohort_sizes
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer
from tests.support.otel import agent_trace, provider, recorded
from tests.tracing.test_classify import QUESTION, refund_judge
from tests.tracing.test_otlp import otlp_json
from tests.web.conftest import Served, serve


def count_traces(served: Served) -> int:
    return sum(s.members for s in cohort_sizes(served.store) if s.cohort == "all-traffic")


def test_the_sdk_exports_to_the_server_and_a_cohort_results(served: Served) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{served.url}/v1/traces", headers=served.headers())
    tracer_provider = provider(exporter)
    agent_trace(tracer_provider, "I want a refund for order 17", "Refund issued.", session="s1")
    agent_trace(tracer_provider, "What are your opening hours?", "9 to 5.", session="s1")
    agent_trace(tracer_provider, "i want a REFUND for order 99!", "Refund issued.", session="s2")
    tracer_provider.shutdown()

    sizes = {s.cohort: s.members for s in cohort_sizes(served.store)}
    # The third question is the first one but for case, punctuation and the number.
    assert sizes == {"refunds": 1, "all-traffic": 2}
    refunds = cohort_dataset(served.store, "refunds")
    (sample,) = list(refunds)
    assert sample.input == "I want a refund for order 17"
    assert sample.output == "Refund issued."
    assert sample.context == "Refunds are paid within 5 days.\n\nOrders ship in 2 days."
    assert sample.metadata["model"] == "policy-rlaif-7b"
    assert sample.metadata["session_id"] == "s1"
    assert sample.metadata["usage"] == {"prompt": 42, "completion": 7, "total": 49}
    assert sample.metadata["tool_calls"][0]["name"] == "lookup_order"


def test_otlp_json_and_gzip_are_accepted(served: Served) -> None:
    body = json.dumps(otlp_json(recorded("Refund my order", "Done."))).encode()
    response = httpx.post(
        f"{served.url}/v1/traces",
        content=gzip.compress(body),
        headers=served.headers(**{"Content-Type": "application/json", "Content-Encoding": "gzip"}),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {}
    assert response.headers["X-Heldout-Spans"] == "3"
    assert count_traces(served) == 1


def test_ingest_without_the_token_is_refused_and_nothing_is_stored(served: Served) -> None:
    body = recorded("Refund please", "ok").SerializeToString()
    proto = {"Content-Type": "application/x-protobuf"}
    missing = httpx.post(f"{served.url}/v1/traces", content=body, headers=proto)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert "token" in missing.json()["message"]
    wrong = httpx.post(
        f"{served.url}/v1/traces",
        content=body,
        headers={**proto, "Authorization": "Bearer not-the-token-at-all"},
    )
    assert wrong.status_code == 401
    # A browser's cookie is no credential for ingest.
    cookie = httpx.post(
        f"{served.url}/v1/traces",
        content=body,
        headers={**proto, "Cookie": f"heldout_token={served.token}"},
    )
    assert cookie.status_code == 401
    assert cohort_sizes(served.store) == []


def test_a_server_without_a_token_refuses_ingest(tmp_path: Path) -> None:
    for served in serve(tmp_path, token=None):
        response = httpx.post(
            f"{served.url}/v1/traces",
            content=recorded("q", "a").SerializeToString(),
            headers={"Content-Type": "application/x-protobuf", "Authorization": "Bearer x"},
        )
        assert response.status_code == 403
        assert "HELDOUT_TOKEN" in response.json()["message"]


def test_malformed_otlp_gets_a_clear_4xx_and_is_never_half_stored(served: Served) -> None:
    document = otlp_json(recorded("Refund me", "ok"))
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]  # type: ignore[index]
    spans[2]["traceId"] = "00" * 16  # the first two spans are fine, the third is not
    response = httpx.post(
        f"{served.url}/v1/traces",
        content=json.dumps(document).encode(),
        headers=served.headers(**{"Content-Type": "application/json"}),
    )
    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert "not all zero" in response.json()["message"]
    garbage = httpx.post(
        f"{served.url}/v1/traces",
        content=b"\x0a\xff\xff\xff\xff",
        headers=served.headers(**{"Content-Type": "application/x-protobuf"}),
    )
    assert garbage.status_code == 400
    assert "not an OTLP protobuf" in garbage.json()["message"]
    stored = served.store.transaction(
        "count", lambda conn: conn.exec_driver_sql("SELECT count(*) FROM trace_spans").scalar()
    )
    assert stored == 0


def test_wrong_content_type_and_oversized_bodies(tmp_path: Path) -> None:
    for served in serve(tmp_path, max_request_bytes=4096):
        url = f"{served.url}/v1/traces"
        text = httpx.post(
            url, content=b"hi", headers=served.headers(**{"Content-Type": "text/plain"})
        )
        assert text.status_code == 415
        big = httpx.post(
            url,
            content=b"x" * 5000,
            headers=served.headers(**{"Content-Type": "application/x-protobuf"}),
        )
        assert big.status_code == 413
        bomb = gzip.compress(b"{" + b" " * 100_000 + b"}")
        inflated = httpx.post(
            url,
            content=bomb,
            headers=served.headers(
                **{"Content-Type": "application/json", "Content-Encoding": "gzip"}
            ),
        )
        assert inflated.status_code == 413
        assert cohort_sizes(served.store) == []


def test_a_classifier_cohort_fills_in_the_background_and_shows_its_errors(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.top_logprobs = None
    openai_server.responder = refund_judge
    rules = CohortRules.model_validate(
        {
            "cohorts": [
                {
                    "name": "refund-requests",
                    "classify": {
                        "question": QUESTION,
                        "judge": f"openai:judge@{openai_server.base_url}",
                    },
                }
            ]
        }
    )
    for served in serve(tmp_path, rules=rules, settings=settings_for(openai_server)):
        exporter = OTLPSpanExporter(endpoint=f"{served.url}/v1/traces", headers=served.headers())
        tracer_provider = provider(exporter)
        agent_trace(tracer_provider, "Please refund my broken kettle", "Refund issued.")
        agent_trace(tracer_provider, "Do you ship to Norway?", "Yes.")
        wait_for(served, awaiting=0, joined=1)
        assert count_in(served, "refund-requests") == 1

        tracer_provider.shutdown()
        # Every attempt on the next trace fails (sent whole, in one request, so no
        # later span of it triggers a retry): recorded and shown, not dropped.
        openai_server.fail_next(*["500"] * 3)
        body = recorded("I want a <b>refund</b> for the shoes", "ok").SerializeToString()
        proto = served.headers(**{"Content-Type": "application/x-protobuf"})
        assert httpx.post(f"{served.url}/v1/traces", content=body, headers=proto).is_success
        wait_for(served, errors=1)
        assert count_in(served, "refund-requests") == 1
        overview = httpx.get(f"{served.url}/")
        assert '<span class="tag error">1</span>' in overview.text
        page = httpx.get(f"{served.url}/cohorts/refund-requests")
        assert "1 judge error" in page.text
        assert "unavailable" in page.text
        assert "<b>refund</b>" not in page.text  # escaped everywhere

        # The next ingest classifies again: the failed trace gets its verdict.
        retry = OTLPSpanExporter(endpoint=f"{served.url}/v1/traces", headers=served.headers())
        again = provider(retry)
        agent_trace(again, "Where is my parcel?", "On its way.")
        again.shutdown()
        wait_for(served, awaiting=0, errors=0, joined=2)
        assert count_in(served, "refund-requests") == 2


def count_in(served: Served, cohort: str) -> int:
    return sum(s.members for s in cohort_sizes(served.store) if s.cohort == cohort)


def wait_for(served: Served, timeout: float = 20.0, **expected: int) -> None:
    """Wait until the (only) classifier's counts are ``expected``."""
    deadline = time.monotonic() + timeout
    while True:
        found = classifier_status(served.store)
        if found and all(getattr(found[0], k) == v for k, v in expected.items()):
            return
        assert time.monotonic() < deadline, f"the classification did not settle: {found}"
        time.sleep(0.05)
