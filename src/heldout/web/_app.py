"""The app factory: the trace receiver and the dashboard in one FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from heldout._errors import HeldoutError
from heldout.config import ServerSettings, Settings
from heldout.store import Store
from heldout.tracing import CohortRules
from heldout.web import _pages, _receiver, _views
from heldout.web._context import AppContext

# No script may run at all: model text is escaped, and even a payload that slipped
# through could not execute. Styles and charts are inline; forms post to this origin.
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def create_app(
    store: Store,
    server: ServerSettings | None = None,
    *,
    rules: CohortRules | None = None,
    lifespan: Callable[[FastAPI], AsyncIterator[None]] | None = None,
    settings: Settings | None = None,
    judge: str | None = None,
) -> FastAPI:
    """The heldout server: ``POST /v1/traces`` and the dashboard pages.

    Args:
        store: The results store, shared by every request (its caller closes it).
        server: Token, limits and page size (default: no token, so ingest and
            labeling are refused).
        rules: The cohort rules applied to ingested traces (None: no cohorts).
        lifespan: An async generator run around the app's life (the scheduled
            evaluation of ``heldout serve``).
        settings: Judge endpoints and limits for cohort classifiers (default:
            ``heldout.toml`` and the environment).
        judge: The judge of cohort classifiers that name none (default: the eval judge).
    """
    ctx = AppContext(
        store=store, server=server or ServerSettings(), rules=rules, settings=settings, judge=judge
    )

    @asynccontextmanager
    async def life(app: FastAPI) -> AsyncIterator[None]:
        # Traces left awaiting a classifier (an earlier run, a refresh at start) are
        # judged now rather than at the next ingest.
        ctx.classify_soon()
        try:
            if lifespan is None:
                yield
            else:
                async with asynccontextmanager(lifespan)(app):
                    yield
        finally:
            await ctx.stop_classifying()

    app = FastAPI(title="heldout", docs_url=None, redoc_url=None, openapi_url=None, lifespan=life)
    app.state.heldout = ctx
    app.include_router(_receiver.router)
    app.include_router(_pages.router)
    app.include_router(_views.router)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 303:
            return Response(status_code=303, headers=headers)
        if request.url.path.startswith("/v1/"):
            return JSONResponse({"message": str(exc.detail)}, exc.status_code, headers=headers)
        response = ctx.render(request, "error.html.j2", exc.status_code, message=str(exc.detail))
        response.headers.update(headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}"
        return await http_error(request, HTTPException(400, message))

    @app.exception_handler(HeldoutError)
    async def heldout_error(request: Request, exc: HeldoutError) -> Response:
        return await http_error(request, HTTPException(400, str(exc)))

    return app
