"""OTLP trace requests (``ExportTraceServiceRequest``) decoded into span records.

Both OTLP/HTTP encodings are read: binary protobuf (``application/x-protobuf``) and
JSON (``application/json``). OTLP's JSON is protobuf's JSON mapping with two twists,
handled here: trace and span ids are hex, not base64, and enums are integers.

A request is decoded whole before anything is stored: one bad span (an id of the
wrong length, a time that is not a number) refuses the whole request with a
:class:`~heldout.DataError` naming the span, so a request is never half-stored.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from pydantic import ValidationError

from heldout._errors import DataError
from heldout.tracing._models import SpanEvent, SpanRecord, SpanStatus

Encoding = Literal["protobuf", "json"]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
_STATUS: dict[int, SpanStatus] = {
    Status.STATUS_CODE_UNSET: "unset",
    Status.STATUS_CODE_OK: "ok",
    Status.STATUS_CODE_ERROR: "error",
}


def encoding_of(content_type: str | None) -> Encoding | None:
    """``protobuf`` or ``json`` for an OTLP/HTTP ``Content-Type``; None for any other."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return {PROTOBUF: "protobuf", JSON: "json"}.get(media)  # type: ignore[return-value]


def decode_request(body: bytes, encoding: Encoding, *, source: str = "request") -> list[SpanRecord]:
    """The spans of one OTLP trace export request.

    Args:
        body: The request body, uncompressed.
        encoding: ``protobuf`` or ``json``.
        source: Where the body came from, for error messages (a file name).

    Raises:
        DataError: The body is not an OTLP trace request in that encoding, or a span in
            it is invalid; nothing of it should be stored.
    """
    request = ExportTraceServiceRequest()
    if encoding == "protobuf":
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise DataError(f"{source}: not an OTLP protobuf trace request: {exc}") from exc
    else:
        _parse_json(body, request, source)
    return list(_spans(request, source))


def _parse_json(body: bytes, request: ExportTraceServiceRequest, source: str) -> None:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{source}: not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise DataError(f"{source}: an OTLP JSON trace request is an object with resourceSpans")
    try:
        _hex_ids_to_base64(document)
        # OTLP receivers must ignore fields they do not know (newer senders add some).
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise DataError(f"{source}: not an OTLP JSON trace request: {exc}") from exc


def _hex_ids_to_base64(node: Any) -> None:
    """Rewrite OTLP JSON's hex ids as the base64 that protobuf's JSON parser expects."""
    if isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in _ID_FIELDS and isinstance(value, str):
            try:
                node[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            except ValueError as exc:
                raise ValueError(f"{key} {value[:40]!r} is not hex") from exc
        else:
            _hex_ids_to_base64(value)


def _spans(request: ExportTraceServiceRequest, source: str) -> Iterator[SpanRecord]:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = resource.get("service.name")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield _span(span, service if isinstance(service, str) else None, source)


def _span(span: Span, service: str | None, source: str) -> SpanRecord:
    trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
    where = f"{source}: span {span_id or '(no id)'} of trace {trace_id or '(no id)'}"
    if len(span.trace_id) != 16 or not any(span.trace_id):
        raise DataError(f"{where}: the trace id must be 16 bytes and not all zero")
    if len(span.span_id) != 8 or not any(span.span_id):
        raise DataError(f"{where}: the span id must be 8 bytes and not all zero")
    if span.parent_span_id and len(span.parent_span_id) != 8:
        raise DataError(f"{where}: the parent span id must be 8 bytes")
    start = _time(span.start_time_unix_nano)
    end = _time(span.end_time_unix_nano) if span.end_time_unix_nano else start
    if start is None or end is None:
        raise DataError(f"{where}: the span has no start time")
    try:
        return SpanRecord(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=span.parent_span_id.hex() or None,
            name=span.name,
            service=service,
            start_time=start,
            end_time=max(start, end),
            status=_STATUS.get(span.status.code, "unset"),
            attributes=_attributes(span.attributes),
            events=[
                SpanEvent(
                    name=event.name,
                    time=_time(event.time_unix_nano),
                    attributes=_attributes(event.attributes),
                )
                for event in span.events
            ],
        )
    except ValidationError as exc:  # pragma: no cover - the checks above come first
        raise DataError(f"{where}: {exc.errors()[0]['msg']}") from exc


def _time(nanos: int) -> datetime | None:
    if nanos <= 0:
        return None
    try:
        return datetime.fromtimestamp(nanos / 1e9, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return binascii.b2a_base64(value.bytes_value, newline=False).decode("ascii")
    return getattr(value, kind)
