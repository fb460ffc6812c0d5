"""OTLP decoding: the SDK's own protobuf and its JSON twin, and malformed requests."""

from __future__ import annotations

import base64
import json

import pytest
from google.protobuf import json_format

from heldout import DataError
from heldout.tracing import decode_request, encoding_of
from tests.support.otel import recorded


def otlp_json(request: object) -> dict[str, object]:
    """OTLP JSON as exporters write it: ids in hex, not protobuf's base64."""
    document = json_format.MessageToDict(request)  # type: ignore[arg-type]

    def hexify(node: object) -> None:
        if isinstance(node, list):
            for item in node:
                hexify(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId"):
                    node[key] = base64.b64decode(value).hex()
                else:
                    hexify(value)

    hexify(document)
    return document


def test_protobuf_and_json_decode_to_the_same_spans() -> None:
    request = recorded("Where is my refund?", "It is on its way.")
    from_proto = decode_request(request.SerializeToString(), "protobuf")
    from_json = decode_request(json.dumps(otlp_json(request)).encode(), "json")
    assert from_proto == from_json
    assert len(from_proto) == 3
    assert {s.name for s in from_proto} == {"agent-turn", "retrieve", "chat"}
    root = next(s for s in from_proto if s.name == "agent-turn")
    assert root.parent_span_id is None
    assert root.service == "shop-assistant"
    assert len(root.trace_id) == 32
    assert len(root.span_id) == 16
    chat = next(s for s in from_proto if s.name == "chat")
    assert chat.parent_span_id == root.span_id
    assert chat.attributes["gen_ai.usage.input_tokens"] == 42
    assert [e.name for e in chat.events] == ["gen_ai.user.message", "gen_ai.choice"]


def test_json_ignores_unknown_fields_as_otlp_requires() -> None:
    document = otlp_json(recorded("q", "a"))
    document["somethingNew"] = {"x": 1}
    assert len(decode_request(json.dumps(document).encode(), "json")) == 3


@pytest.mark.parametrize(
    ("body", "encoding", "message"),
    [
        (b"\xff\xff\xff", "protobuf", "not an OTLP protobuf"),
        (b"{not json", "json", "not valid JSON"),
        (b"[1, 2]", "json", "an object with resourceSpans"),
        (b'{"resourceSpans": 3}', "json", "not an OTLP JSON"),
    ],
)
def test_malformed_bodies_are_refused(body: bytes, encoding: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        decode_request(body, encoding)  # type: ignore[arg-type]


def test_one_bad_span_refuses_the_whole_request() -> None:
    document = otlp_json(recorded("q", "a"))
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]  # type: ignore[index]
    spans[1]["spanId"] = "abcd"  # two bytes, not eight
    with pytest.raises(DataError, match=r"span abcd of trace .*8 bytes"):
        decode_request(json.dumps(document).encode(), "json", source="upload")


def test_content_types() -> None:
    assert encoding_of("application/x-protobuf") == "protobuf"
    assert encoding_of("application/json; charset=utf-8") == "json"
    assert encoding_of("text/plain") is None
    assert encoding_of(None) is None
