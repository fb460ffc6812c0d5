"""Ingest: OTLP bytes (a request body or an exported file) into the store, whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

from heldout._errors import DataError
from heldout.store import Store
from heldout.tracing._models import SpanRecord
from heldout.tracing._otlp import Encoding, decode_request
from heldout.tracing._rules import CohortRules
from heldout.tracing._storage import IngestResult, store_spans

_PROTOBUF_SUFFIXES = {".pb", ".binpb", ".protobuf"}
_JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}


def ingest_otlp(
    store: Store,
    body: bytes,
    encoding: Encoding,
    rules: CohortRules | None = None,
    *,
    source: str = "request",
) -> IngestResult:
    """Decode one OTLP trace request and store it, with its traces and cohorts.

    Raises:
        DataError: The body is not a valid OTLP trace request; nothing is stored.
        StoreError: The store refused the write; nothing is stored.
    """
    return store_spans(store, decode_request(body, encoding, source=source), rules)


def read_otlp_file(path: str | Path) -> list[SpanRecord]:
    """The spans of an exported OTLP file.

    ``.json`` holds one OTLP JSON request, or one per line as the OpenTelemetry
    Collector's file exporter writes them (``.jsonl`` too); ``.pb`` / ``.binpb`` hold
    one binary protobuf request.

    Raises:
        DataError: The file is missing, of another kind, or not valid OTLP; the message
            names the file (and the line, for JSON lines).
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in _PROTOBUF_SUFFIXES | _JSON_SUFFIXES:
        known = ", ".join(sorted(_PROTOBUF_SUFFIXES | _JSON_SUFFIXES))
        raise DataError(f"{file}: an OTLP trace file ends in one of {known}")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise DataError(f"{file}: cannot read: {exc.strerror or exc}") from exc
    if suffix in _PROTOBUF_SUFFIXES:
        return decode_request(data, "protobuf", source=str(file))
    try:
        json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        spans: list[SpanRecord] = []
        for number, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                spans.extend(decode_request(line, "json", source=f"{file}:{number}"))
        return spans
    return decode_request(data, "json", source=str(file))


def ingest_file(store: Store, path: str | Path, rules: CohortRules | None = None) -> IngestResult:
    """Ingest an exported OTLP file (see :func:`read_otlp_file`) in one transaction.

    Raises:
        DataError: The file is not valid OTLP; nothing of it is stored.
        StoreError: The store refused the write; nothing of it is stored.
    """
    return store_spans(store, read_otlp_file(path), rules)
