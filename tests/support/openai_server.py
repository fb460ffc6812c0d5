"""A real HTTP server speaking the OpenAI chat protocol, with faults on demand.

It is written on plain asyncio streams (raw HTTP/1.1 with keep-alive) so that every
byte, including broken ones, is under the test's control. It runs on its own event
loop in a background thread, bound to 127.0.0.1 on a free port::

    with OpenAIServer(latency_ms=20) as server:
        judge = OpenAIJudge("test-model", base_url=server.base_url)
        server.fail_next("429", "500")      # the next two chat requests fail
        ...
        assert server.requests == 3

Or, for benchmarks, as a script::

    python -m tests.support.openai_server --port 0 --latency-ms 50 --port-file F

Routes: ``POST /v1/chat/completions`` (non-streaming) and ``GET /v1/models``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

FaultKind = Literal["429", "500", "slow", "malformed", "cutoff", "400", "content_filter", "refusal"]
Responder = Callable[[dict[str, Any]], str]

#: The first-token logprobs served in choice mode unless a test sets others.
DEFAULT_TOP_LOGPROBS: dict[str, float] = {"Yes": -0.1, "No": -2.4, "yes": -4.0, "The": -6.0}


@dataclass(frozen=True)
class Fault:
    """One injected failure, used up by the next chat request.

    Attributes:
        kind: ``429`` (with Retry-After), ``500``, ``slow`` (answers after ``delay_s``),
            ``malformed`` (200 with invalid JSON), ``cutoff`` (Content-Length larger
            than the body, then close), ``400``, ``content_filter``, ``refusal``.
        retry_after: The Retry-After header of a 429 (seconds or an HTTP date); None
            sends none.
        delay_s: How long a ``slow`` reply takes.
    """

    kind: FaultKind
    retry_after: str | None = "0.2"
    delay_s: float = 5.0


@dataclass(frozen=True)
class RequestRecord:
    """One request the server read.

    Attributes:
        time: ``time.monotonic()`` when the request was read (same clock as the tests).
        method: The HTTP method.
        path: The request target.
        body: The parsed JSON body, when there was one.
        fault: The fault injected into the reply, if any.
    """

    time: float
    method: str
    path: str
    body: dict[str, Any] | None
    fault: FaultKind | None


class OpenAIServer:
    """The server; start it with ``with`` (or :meth:`start` / :meth:`stop`).

    Args:
        host: Interface to bind.
        port: Port to bind; 0 picks a free one (see :attr:`port`).
        latency_ms: Time every chat reply takes before it is sent.
        responder: Builds the assistant text from the request JSON; see
            :func:`default_responder`.
        top_logprobs: First-token logprobs served when a request asks for logprobs; None
            serves ``"logprobs": null`` (an endpoint without logprob support).
        usage: ``(prompt_tokens, completion_tokens)`` to report; None counts words.
        model: The model name in replies; None echoes the requested model.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        responder: Responder | None = None,
        top_logprobs: dict[str, float] | None = DEFAULT_TOP_LOGPROBS,
        usage: tuple[int, int] | None = None,
        model: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.latency_s = latency_ms / 1000
        self.responder = responder
        self.top_logprobs = dict(top_logprobs) if top_logprobs is not None else None
        self.usage = usage
        self.model = model
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._log: list[RequestRecord] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # -- control, from the test's thread ------------------------------------------------

    @property
    def base_url(self) -> str:
        """The base URL to give a client, ending in ``/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def fail_next(self, *faults: FaultKind | Fault) -> None:
        """Make the next chat requests fail, one fault each, in order."""
        with self._lock:
            self._faults.extend(f if isinstance(f, Fault) else Fault(f) for f in faults)

    @property
    def pending_faults(self) -> int:
        """Faults not yet used up."""
        with self._lock:
            return len(self._faults)

    @property
    def requests(self) -> int:
        """Requests read since the start or the last :meth:`reset`."""
        with self._lock:
            return len(self._log)

    @property
    def max_in_flight(self) -> int:
        """The most chat requests being answered at once."""
        with self._lock:
            return self._max_in_flight

    @property
    def log(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        """Forget the log, the in-flight maximum and pending faults."""
        with self._lock:
            self._log.clear()
            self._faults.clear()
            self._max_in_flight = self._in_flight

    def start(self) -> Self:
        """Start serving in a background thread; returns when the port is bound."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._listen())
            except BaseException as exc:  # reported to start() below
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="openai-test-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            raise RuntimeError(f"the test server cannot listen: {failure[0]}") from failure[0]
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join the thread."""
        if self._loop is None or self._thread is None:
            return
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- serving, on the server's loop -------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            keep_alive = True
            while keep_alive:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _version = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                keep_alive = headers.get("connection", "").lower() != "close"
                keep_alive = await self._respond(method, path, body, writer) and keep_alive
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the client went away
        except asyncio.CancelledError:
            pass  # the server is stopping
        finally:
            self._connections.discard(task)
            writer.close()
            with suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _respond(
        self, method: str, path: str, raw: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; False when the connection must close afterwards."""
        body: dict[str, Any] | None = None
        if raw:
            with suppress(ValueError):
                parsed = json.loads(raw)
                body = parsed if isinstance(parsed, dict) else None
        is_chat = method == "POST" and path.rstrip("/").endswith("/chat/completions")
        with self._lock:
            fault = self._faults.popleft() if is_chat and self._faults else None
            self._log.append(
                RequestRecord(time.monotonic(), method, path, body, fault.kind if fault else None)
            )
            if is_chat:
                self._in_flight += 1
                self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            if is_chat:
                if body is None:
                    return await _send(writer, 400, _error("request body is not a JSON object"))
                if self.latency_s:
                    await asyncio.sleep(self.latency_s)
                return await self._chat(body, fault, writer)
            if method == "GET" and path.rstrip("/").endswith("/models"):
                return await _send(writer, 200, self._models())
            return await _send(writer, 404, _error(f"no route {method} {path}"))
        finally:
            if is_chat:
                with self._lock:
                    self._in_flight -= 1

    async def _chat(
        self, body: dict[str, Any], fault: Fault | None, writer: asyncio.StreamWriter
    ) -> bool:
        kind = fault.kind if fault else None
        if fault is not None and kind == "429":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            error = _error("Rate limit reached (injected)", "rate_limit_error")
            return await _send(writer, 429, error, headers)
        if kind == "500":
            return await _send(writer, 500, _error("Internal error (injected)", "server_error"))
        if kind == "400":
            message = "Invalid value for 'messages' (injected)"
            return await _send(writer, 400, _error(message, "invalid_request_error"))
        if kind == "malformed":
            return await _send(writer, 200, b'{"id": "chatcmpl-broken", "choices": [{"inde')
        if fault is not None and kind == "slow":
            await asyncio.sleep(fault.delay_s)
        payload = self._completion(body, kind)
        if kind == "cutoff":
            await _send(writer, 200, payload[: len(payload) // 2], length=len(payload))
            return False
        return await _send(writer, 200, payload)

    def _completion(self, body: dict[str, Any], kind: FaultKind | None) -> bytes:
        text = (self.responder or self._default_text)(body)
        finish_reason = "stop"
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if kind == "content_filter":
            message["content"], finish_reason = None, "content_filter"
        elif kind == "refusal":
            message["content"], message["refusal"] = None, "I can't help with that (injected)."
        logprobs = None
        if body.get("logprobs") and self.top_logprobs is not None:
            logprobs = self._logprobs(text, int(body.get("top_logprobs") or 0))
        prompt_tokens, completion_tokens = self.usage or (
            sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])),
            max(1, len(text.split())),
        )
        reply = {
            "id": f"chatcmpl-{time.monotonic_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model or body.get("model", "test-model"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": logprobs,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return json.dumps(reply).encode()

    def _logprobs(self, text: str, top_n: int) -> dict[str, Any]:
        top = sorted((self.top_logprobs or {}).items(), key=lambda item: -item[1])[:top_n]
        entries = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top]
        first = {"token": text, "logprob": dict(top).get(text, 0.0), "bytes": list(text.encode())}
        return {"content": [{**first, "top_logprobs": entries}], "refusal": None}

    def _default_text(self, body: dict[str, Any]) -> str:
        return default_responder(body, self.top_logprobs)

    def _models(self) -> bytes:
        model = {"id": self.model or "test-model", "object": "model", "created": 0}
        return json.dumps({"object": "list", "data": [{**model, "owned_by": "tests"}]}).encode()


def default_responder(body: dict[str, Any], top_logprobs: dict[str, float] | None = None) -> str:
    """The assistant text when a test sets no responder.

    Choice mode (logprobs asked): the most likely token of ``top_logprobs`` (or
    ``"Yes"``). JSON-schema mode: an object built from the schema's properties. JSON
    mode without a schema: ``{"verdict": "ok"}``. Otherwise a short sentence.
    """
    if body.get("logprobs"):
        return max(top_logprobs.items(), key=lambda item: item[1])[0] if top_logprobs else "Yes"
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema", {})
        return json.dumps(_example(schema))
    if response_format.get("type") == "json_object":
        return json.dumps({"verdict": "ok"})
    return "The response meets the criterion."


def _example(schema: dict[str, Any]) -> Any:
    """A value that fits a simple JSON schema."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: _example(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [_example(schema.get("items", {}))]
    return {"integer": 1, "number": 1.0, "boolean": True, "null": None}.get(str(kind), "ok")


def _error(message: str, kind: str = "invalid_request_error") -> bytes:
    error = {"message": message, "type": kind, "param": None, "code": None}
    return json.dumps({"error": error}).encode()


async def _send(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    length: int | None = None,
) -> bool:
    """Write one response; ``length`` overrides Content-Length (to cut a body off)."""
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body) if length is None else length}",
        "Connection: keep-alive",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
    return True


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until SIGINT or SIGTERM (for benchmarks)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--port-file", type=Path, help="write the bound port here")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    with OpenAIServer(host=args.host, port=args.port, latency_ms=args.latency_ms) as server:
        if args.port_file is not None:
            args.port_file.write_text(f"{server.port}\n", encoding="utf-8")
        print(f"serving {server.base_url}", flush=True)
        with suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


def _interrupt(signum: int, frame: object) -> None:
    # Raise in the main thread rather than set an Event: Event.set() from a signal
    # handler can deadlock on the lock Event.wait() holds. Later signals (uv run and
    # timeout both forward SIGTERM) are ignored so they cannot interrupt the shutdown.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
