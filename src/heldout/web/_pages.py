"""The dashboard's main pages: overview, runs, a run's rows, one row, and sign-in."""

from __future__ import annotations

from functools import partial
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from heldout.reports._charts import fail_rate_heatmap
from heldout.tracing import classifier_status, cohort_sizes
from heldout.web._charts import trend_chart
from heldout.web._context import COOKIE, context_of, read_body
from heldout.web._labels import labels_of
from heldout.web._queries import (
    checkpoints_of,
    fail_rate_trend,
    latest_checkpoint_run,
    row_detail,
    row_page,
    run_lines,
)

router = APIRouter()

FORM_LIMIT = 64 * 1024
"""The largest form body a page accepts."""


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> Response:
    """Fail rate by cohort over time and by checkpoint, the cohorts and the latest runs."""
    ctx = context_of(request)
    ctx.guard_page(request)
    trend = fail_rate_trend(ctx.store, memo=ctx.cache)
    heatmap = None
    checkpoint_run = latest_checkpoint_run(ctx.store)
    found = ctx.store.get_run(checkpoint_run) if checkpoint_run is not None else None
    if checkpoint_run is not None and found is not None:
        aggregates = ctx.aggregates(found)
        order = checkpoints_of(ctx.store, checkpoint_run)
        if any(a.fail_rate is not None for a in aggregates):
            heatmap = ctx.chart(
                ("by-checkpoint", tuple(aggregates), tuple(order)),
                partial(fail_rate_heatmap, aggregates, order, chart_id="by-checkpoint"),
            )
    cohorts = {c.cohort: c for c in cohort_sizes(ctx.store)}
    classes = {c.cohort: c for c in classifier_status(ctx.store)}
    ruled = [r.name for r in ctx.rules.cohorts] if ctx.rules is not None else []
    return ctx.render(
        request,
        "overview.html.j2",
        trend=ctx.chart(("trend", tuple(trend)), partial(trend_chart, trend)),
        trend_points=trend[-30:],
        heatmap=heatmap,
        checkpoint_run=checkpoint_run,
        cohorts=cohorts,
        classes=classes,
        cohort_names=sorted(set(cohorts) | set(classes) | set(ruled)),
        classify_problem=ctx.classify_problem,
        runs=run_lines(ctx.store, limit=10, memo=ctx.cache),
    )


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, page: int = Query(1, ge=1, le=100_000)) -> Response:
    """Every run, newest first, a page at a time."""
    ctx = context_of(request)
    ctx.guard_page(request)
    size = ctx.server.page_size
    lines = run_lines(ctx.store, limit=size + 1, offset=(page - 1) * size, memo=ctx.cache)
    return ctx.render(request, "runs.html.j2", runs=lines[:size], page=page, more=len(lines) > size)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request,
    run_id: str,
    cohort: str | None = None,
    checkpoint: str | None = None,
    failed: bool = False,
    after: str | None = None,
) -> Response:
    """A run: its aggregates per cohort and checkpoint, then its rows, a page at a time."""
    ctx = context_of(request)
    ctx.guard_page(request)
    run = ctx.store.get_run(run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id!r} in the store")
    aggregates = ctx.aggregates(run)
    checkpoints = checkpoints_of(ctx.store, run_id)
    heatmap = None
    if any(a.fail_rate is not None for a in aggregates):
        order: list[str | None] = list(checkpoints) if checkpoints else [None]
        heatmap = ctx.chart(
            ("run-heatmap", tuple(aggregates), tuple(order)),
            partial(fail_rate_heatmap, aggregates, order, chart_id="run-heatmap"),
        )
    size = ctx.server.page_size
    rows = row_page(
        ctx.store,
        run_id,
        limit=size + 1,
        after=after,
        cohort=cohort,
        checkpoint=checkpoint,
        failed_only=failed,
    )
    return ctx.render(
        request,
        "run.html.j2",
        run=run,
        aggregates=aggregates,
        heatmap=heatmap,
        checkpoints=checkpoints,
        cohorts=sorted({a.cohort for a in aggregates}),
        evaluators=sorted({a.evaluator for a in aggregates}),
        rows=rows[:size],
        next_after=rows[size - 1].sample_key if len(rows) > size else None,
        filters={"cohort": cohort, "checkpoint": checkpoint, "failed": failed},
    )


@router.get("/runs/{run_id}/rows/{sample_key:path}", response_class=HTMLResponse)
def row_page_view(request: Request, run_id: str, sample_key: str) -> Response:
    """One row: input, output, context, and every judge's score and reason."""
    ctx = context_of(request)
    ctx.guard_page(request)
    found = row_detail(ctx.store, run_id, sample_key)
    if found is None:
        raise HTTPException(404, f"no row {sample_key!r} in run {run_id!r}")
    sample, scores, siblings = found
    return ctx.render(
        request,
        "row.html.j2",
        run_id=run_id,
        sample=sample,
        scores=scores,
        siblings=siblings,
        labels=labels_of(ctx.store, run_id, sample_key),
        axes=[s.evaluator for s in scores if s.status == "ok"],
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    """The sign-in form: the token, kept in a cookie for labeling (and the dashboard)."""
    return context_of(request).render(request, "login.html.j2", next=_local(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token and set it as a cookie (HttpOnly, SameSite=Strict)."""
    ctx = context_of(request)
    form = parse_qs((await read_body(request, FORM_LIMIT)).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = _local((form.get("next") or ["/"])[0])
    if ctx.server.token is None or not ctx.token_matches(token):
        return ctx.render(request, "login.html.j2", 401, next=target, error="wrong token")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """Forget the token cookie."""
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _local(target: str) -> str:
    """``target`` if it is a path on this server, else ``/``: no open redirects."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"
