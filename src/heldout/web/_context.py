"""What every route needs: the store, the settings, the rules, templates, and the guards
(token, request size) every entry point applies."""

from __future__ import annotations

import asyncio
import hmac
import logging
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse

from heldout._errors import HeldoutError
from heldout.config import ServerSettings, Settings
from heldout.reports._charts import label as checkpoint_label
from heldout.store import CohortAggregate, RunRecord, Store
from heldout.tracing import CohortRules, classify_traces

_log = logging.getLogger("heldout.web")

CHARTS_KEPT = 32
"""Rendered charts an app keeps."""
COOKIE = "heldout_token"
"""The cookie that carries the token for a browser, after /login."""

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("heldout.web", "templates"),
    autoescape=True,  # always on: inputs, outputs and judge reasons are untrusted text
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


_ENV.filters.update(
    number=_number, percent=_percent, when=_when, checkpoint=checkpoint_label, url=quote
)


@dataclass
class AppContext:
    """The state of one dashboard app."""

    store: Store
    """The results store."""
    server: ServerSettings
    """Token, limits, page size."""
    rules: CohortRules | None = None
    """The cohort rules applied to ingested traces."""
    cache: dict[Any, Any] = field(default_factory=dict)
    """Analyses worth keeping between requests (checkpoint comparisons), by key."""
    charts: OrderedDict[Any, Any] = field(default_factory=OrderedDict)
    """Rendered charts by the data they show, the most recent :data:`CHARTS_KEPT`."""
    settings: Settings | None = None
    """Judge endpoints and limits for cohort classifiers (None: heldout.toml and env)."""
    judge: str | None = None
    """The judge of classifiers that name none (None: the eval judge)."""
    classify_problem: str | None = None
    """Why the last classification failed as a whole (a bad judge spec), if it did."""
    _classifying: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _again: bool = field(default=False, init=False, repr=False)

    def aggregates(self, run: RunRecord) -> list[CohortAggregate]:
        """The run's aggregates, computed in SQL; kept for a finished run until it is
        reopened (its ``updated_at`` changes)."""
        key = ("aggregate", run.id, run.updated_at)
        if key in self.cache:
            found: list[CohortAggregate] = self.cache[key]
            return found
        computed = self.store.aggregate(run.id)
        if run.status != "running":
            self.cache[key] = computed
        return computed

    def chart(self, key: Any, draw: Callable[[], Any]) -> Any:
        """The chart ``draw`` makes for ``key`` (the data it shows), drawn once:
        matplotlib takes a few hundred milliseconds a chart."""
        if key in self.charts:
            self.charts.move_to_end(key)
            return self.charts[key]
        drawn = self.charts[key] = draw()
        while len(self.charts) > CHARTS_KEPT:
            self.charts.popitem(last=False)
        return drawn

    # -- cohort classifiers ---------------------------------------------------------------

    def classify_soon(self) -> None:
        """Judge the traces awaiting a cohort classifier, in the background.

        One classification runs at a time; traces that arrive meanwhile are judged
        by one more round when it ends. Call from the app's event loop.
        """
        if self.rules is None or not any(r.classify for r in self.rules.cohorts):
            return
        self._again = True
        if self._classifying is None or self._classifying.done():
            self._classifying = asyncio.get_running_loop().create_task(self._classify())

    async def _classify(self) -> None:
        while self._again and self.rules is not None:
            self._again = False
            try:
                await classify_traces(
                    self.store, self.rules, settings=self.settings, judge=self.judge
                )
                self.classify_problem = None
            except HeldoutError as exc:
                # Per-trace judge errors are recorded with the trace; this is a failure
                # of the whole round (a bad spec, a store error): shown on the overview.
                self.classify_problem = str(exc)
                _log.warning("cohort classification failed: %s", exc)

    async def stop_classifying(self) -> None:
        """Cancel a classification in progress (at shutdown)."""
        task, self._classifying = self._classifying, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def render(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        """A page rendered with autoescape."""
        html = _ENV.get_template(template).render(
            request=request, signed_in=self.signed_in(request), **values
        )
        return HTMLResponse(html, status_code=status)

    # -- tokens ---------------------------------------------------------------------------

    def presented(self, request: Request, *, cookie: bool) -> str | None:
        """The token the request carries: ``Authorization: Bearer``, or (for a
        browser, when ``cookie``) the cookie /login set."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return request.cookies.get(COOKIE) if cookie else None

    def signed_in(self, request: Request) -> bool:
        """Whether the request carries the right token (header or cookie)."""
        return self.token_matches(self.presented(request, cookie=True))

    def token_matches(self, token: str | None) -> bool:
        """Whether ``token`` is the server's token (compared in constant time)."""
        expected = self.server.token
        if expected is None or token is None:
            return False
        return hmac.compare_digest(token.encode(), expected.encode())

    def require_token(self, request: Request, *, cookie: bool, what: str) -> None:
        """Refuse the request unless it carries the token.

        Raises:
            HTTPException: 403 when the server has no token (writes are off), 401 when
                the token is missing or wrong, 403 for a cross-site form post.
        """
        if self.server.token is None:
            raise HTTPException(
                403,
                f"{what} is off: this server has no token. Start it with --token "
                "or set HELDOUT_TOKEN.",
            )
        if not self.token_matches(self.presented(request, cookie=cookie)):
            raise HTTPException(
                401,
                f"{what} needs the server's token: send 'Authorization: Bearer <token>'"
                + (" or sign in at /login." if cookie else "."),
                headers={"WWW-Authenticate": "Bearer"},
            )
        if cookie:
            _same_origin(request)

    def guard_page(self, request: Request) -> None:
        """Send a browser without the token to /login when the dashboard needs one."""
        if self.server.dashboard_token and not self.signed_in(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(
                303, "sign in", headers={"Location": f"/login?next={quote(target)}"}
            )


def _same_origin(request: Request) -> None:
    # The cookie is SameSite=Strict already; a form posted from another origin is
    # refused here as well, for browsers that send the cookie anyway.
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1] != host:
            raise HTTPException(403, "cross-origin form posts are refused")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes after decompression (gzip or deflate).

    Raises:
        HTTPException: 413 past the limit, 415 for another Content-Encoding, 400 for a
            body that does not decompress.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is {declared} bytes; this server takes at most {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body is over {limit} bytes, this server's limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    coding = request.headers.get("content-encoding", "identity").strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in ("gzip", "deflate"):
        raise HTTPException(415, f"Content-Encoding {coding!r} is not supported; use gzip")
    inflater = zlib.decompressobj(wbits=31 if coding == "gzip" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise HTTPException(400, f"the {coding} body does not decompress: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise HTTPException(413, f"the body inflates past {limit} bytes, this server's limit")
    if not inflater.eof:
        raise HTTPException(400, f"the {coding} body is cut off")
    return out


def context_of(request: Request) -> AppContext:
    """The app's context."""
    ctx = request.app.state.heldout
    if not isinstance(ctx, AppContext):  # pragma: no cover - create_app sets it
        raise RuntimeError("the app was not made by heldout.web.create_app")
    return ctx
