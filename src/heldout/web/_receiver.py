"""``POST /v1/traces``: the OTLP/HTTP trace receiver.

The token is checked before the body is read; the body is read up to the size limit;
the request is decoded whole, then stored in one transaction. A malformed request
gets 400 with what is wrong and nothing of it is stored. Traces awaiting a cohort's
classifier are judged in the background after the reply.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.concurrency import run_in_threadpool

from heldout._errors import DataError, StoreError
from heldout.tracing import encoding_of, ingest_otlp
from heldout.tracing._otlp import JSON, PROTOBUF
from heldout.web._context import context_of, read_body

router = APIRouter()

# google.rpc.Code values that OTLP/HTTP error bodies carry.
_INVALID_ARGUMENT = 3
_UNAVAILABLE = 14


@router.post("/v1/traces")
async def receive_traces(request: Request) -> Response:
    """Store the spans of one OTLP trace export request (protobuf or JSON)."""
    ctx = context_of(request)
    ctx.require_token(request, cookie=False, what="Trace ingest")
    encoding = encoding_of(request.headers.get("content-type"))
    if encoding is None:
        raise HTTPException(415, f"send OTLP traces as {PROTOBUF} or {JSON}")
    body = await read_body(request, ctx.server.max_request_bytes)
    try:
        result = await run_in_threadpool(ingest_otlp, ctx.store, body, encoding, ctx.rules)
    except DataError as exc:
        return JSONResponse({"code": _INVALID_ARGUMENT, "message": str(exc)}, status_code=400)
    except StoreError as exc:
        # 503 tells an OTLP exporter to retry later.
        return JSONResponse({"code": _UNAVAILABLE, "message": str(exc)}, status_code=503)
    ctx.classify_soon()
    headers = {"X-Heldout-Spans": str(result.spans), "X-Heldout-Traces": str(result.traces)}
    if encoding == "protobuf":
        body_out = ExportTraceServiceResponse().SerializeToString()
        return Response(body_out, media_type=PROTOBUF, headers=headers)
    return JSONResponse({}, headers=headers)
