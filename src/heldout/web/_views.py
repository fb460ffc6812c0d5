"""The dashboard's analysis pages: checkpoint comparison, judge disagreement, spot-checks,
and production cohorts with their traces."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from heldout._errors import HeldoutError
from heldout.store import RunRecord, Store, StoredScore
from heldout.tracing import (
    classifier_errors,
    classifier_status,
    cohort_traces,
    get_trace,
    span_facts,
)
from heldout.web._context import AppContext, context_of, read_body
from heldout.web._labels import (
    PREFERENCE_LABELS,
    VERDICT_LABELS,
    SpotCheckLabel,
    label_accuracy,
    labels_of,
    next_to_label,
    pairwise_axes,
    put_label,
    spotcheck_records,
)
from heldout.web._pages import FORM_LIMIT
from heldout.web._queries import VerdictSample, row_detail, run_lines, sampled_verdicts

router = APIRouter()

_AGREEMENT_RESAMPLES = 200
"""Bootstrap resamples for the dashboard's agreement intervals: quick, not final."""
_AGREEMENT_ROWS = 10_000
"""Rows the disagreement page compares at most: a systematic sample of larger runs
(``judge_agreement`` in Python, or ``heldout`` analyses, take every row)."""


def _run(ctx: AppContext, run_id: str) -> RunRecord:
    run = ctx.store.get_run(run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id!r} in the store")
    return run


@router.get("/runs/{run_id}/compare", response_class=HTMLResponse)
def compare(request: Request, run_id: str) -> Response:
    """A regression eval's checkpoints against its baseline: deltas with intervals and
    the checkpoint selected, as RegressionEval computes them."""
    ctx = context_of(request)
    ctx.guard_page(request)
    run = _run(ctx, run_id)
    if run.kind != "regress" or "sweep" not in run.config:
        raise HTTPException(
            404, f"run {run_id!r} is a {run.kind!r} run; only regress runs compare checkpoints"
        )
    key = ("compare", run_id, run.updated_at)
    if key not in ctx.cache:
        ctx.cache[key] = _comparison(ctx.store, run)
    result = ctx.cache[key]
    return ctx.render(request, "compare.html.j2", run=run, result=result)


def _comparison(store: Store, run: RunRecord) -> Any:
    # scipy is heavy: loaded only when someone opens a comparison.
    from heldout.analysis._axes import run_axes, stored_axis_scores
    from heldout.regress import analyse_scores, sweep_table
    from heldout.sweep import SweepConfig

    def stored(record: RunRecord) -> tuple[SweepConfig, list[StoredScore]]:
        sweep = SweepConfig.model_validate(record.config["sweep"])
        checkpoints = [c.name for c in sweep.checkpoints]
        return sweep, stored_axis_scores(store, record.id, checkpoints, run_axes(record.config))

    sweep, scores = stored(run)
    result = analyse_scores(sweep, run.id, scores)
    training_id = run.config.get("training_run")
    training = store.get_run(training_id) if isinstance(training_id, str) else None
    if sweep.overfitting is not None and training is not None:
        from heldout.analysis import judge_overfitting

        # Only the training judge's table is needed: no changes, no selection.
        training_table = sweep_table(*stored(training))
        result.overfitting = judge_overfitting(
            training_table, result.table, metrics=sweep.overfitting.metrics
        )
    return result


@router.get("/agreement", response_class=HTMLResponse)
def agreement(request: Request, run: Annotated[list[str] | None, Query()] = None) -> Response:
    """How far the judges of two or more runs agree, and the rows they disagree on."""
    ctx = context_of(request)
    ctx.guard_page(request)
    run = run or []
    report, problem, sample = None, None, None
    if len(run) >= 2:
        try:
            report, sample = _agreement(ctx, run)
        except HeldoutError as exc:
            problem = str(exc)
    elif run:
        problem = "choose two or more runs: one run per judge, on the same rows"
    return ctx.render(
        request,
        "agreement.html.j2",
        chosen=run,
        runs=run_lines(ctx.store, limit=100, memo=ctx.cache),
        report=report,
        sample=sample,
        disagreements=report.disagreements[:200] if report else [],
        problem=problem,
    )


def _agreement(ctx: AppContext, run_ids: list[str]) -> tuple[Any, VerdictSample]:
    """The agreement of the runs' judges, kept until one of the runs changes."""
    from heldout.analysis import judge_agreement

    stamps = tuple(getattr(ctx.store.get_run(r), "updated_at", None) for r in run_ids)
    key = ("agreement", tuple(run_ids), stamps)
    if key not in ctx.cache:
        sample = sampled_verdicts(ctx.store, run_ids, max_rows=_AGREEMENT_ROWS)
        report = judge_agreement(sample.verdicts, n_resamples=_AGREEMENT_RESAMPLES)
        ctx.cache[key] = (report, sample.model_copy(update={"verdicts": {}}))
    cached: tuple[Any, VerdictSample] = ctx.cache[key]
    return cached


@router.get("/runs/{run_id}/spotcheck", response_class=HTMLResponse)
def spotcheck(
    request: Request,
    run_id: str,
    axis: str | None = None,
    after: str | None = None,
    labeler: str = "dashboard",
) -> Response:
    """One row to label on one axis, then the judge's accuracy against the labels."""
    ctx = context_of(request)
    ctx.guard_page(request)
    run = _run(ctx, run_id)
    axes = sorted({a.evaluator for a in ctx.aggregates(run) if a.n_ok})
    axis = axis if axis in axes else (axes[0] if axes else None)
    item = None
    if axis is not None:
        key = next_to_label(ctx.store, run_id, axis, labeler=labeler, after=after)
        if key is None and after is not None:
            key = next_to_label(ctx.store, run_id, axis, labeler=labeler)
        item = row_detail(ctx.store, run_id, key) if key is not None else None
    pairwise = axis in pairwise_axes(ctx.store, run_id)
    return ctx.render(
        request,
        "spotcheck.html.j2",
        run=run,
        axes=axes,
        axis=axis,
        labeler=labeler,
        item=item,
        pairwise=pairwise,
        shown=_shown_order(item[0].sample_key) if item and pairwise else None,
        accuracy=label_accuracy(ctx.store, run_id),
        n_labels=len(labels_of(ctx.store, run_id)),
    )


def _shown_order(sample_key: str) -> tuple[str, str]:
    """Which response a person reads first, A (the output) or B (the reference):
    seeded by the row, so people are not always shown the output first."""
    first = "A" if hashlib.sha256(sample_key.encode()).digest()[0] % 2 == 0 else "B"
    return (first, "B" if first == "A" else "A")


@router.post("/runs/{run_id}/spotcheck")
async def record_label(request: Request, run_id: str) -> Response:
    """Record a person's label (token required), then show the next row."""
    ctx = context_of(request)
    ctx.require_token(request, cookie=True, what="Labeling")
    form = parse_qs((await read_body(request, FORM_LIMIT)).decode("utf-8", "replace"))
    fields = {k: v[0] for k, v in form.items() if v}
    try:
        label = SpotCheckLabel(
            run_id=run_id,
            sample_key=fields.get("sample_key", ""),
            axis=fields.get("axis", ""),
            labeler=fields.get("labeler") or "dashboard",
            label=fields.get("label", ""),  # type: ignore[arg-type]
            note=fields.get("note") or None,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise HTTPException(400, f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    if row_detail(ctx.store, run_id, label.sample_key) is None:
        raise HTTPException(404, f"no row {label.sample_key!r} in run {run_id!r}")
    pairwise = label.axis in pairwise_axes(ctx.store, run_id)
    allowed = PREFERENCE_LABELS if pairwise else VERDICT_LABELS
    if label.label not in allowed:
        raise HTTPException(
            400, f"label: {label.axis!r} takes {', '.join(allowed)}, not {label.label!r}"
        )
    put_label(ctx.store, label)
    target = (
        f"/runs/{quote(run_id)}/spotcheck?axis={quote(label.axis)}"
        f"&after={quote(label.sample_key)}&labeler={quote(label.labeler)}"
    )
    return RedirectResponse(target, status_code=303)


@router.get("/runs/{run_id}/spotcheck.jsonl")
def spotcheck_file(request: Request, run_id: str) -> Response:
    """The run's labels as a spot-check file for ``heldout spotcheck score``."""
    ctx = context_of(request)
    ctx.guard_page(request)
    _run(ctx, run_id)
    lines = [json.dumps(r, ensure_ascii=False) for r in spotcheck_records(ctx.store, run_id)]
    return Response(
        "".join(line + "\n" for line in lines),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="spotcheck-{quote(run_id)}.jsonl"'},
    )


@router.get("/cohorts/{cohort}", response_class=HTMLResponse)
def cohort_page(request: Request, cohort: str, before: str | None = None) -> Response:
    """A production cohort's traces, newest first, a page at a time."""
    ctx = context_of(request)
    ctx.guard_page(request)
    size = ctx.server.page_size
    found = cohort_traces(ctx.store, cohort, limit=size + 1, before=before)
    status = next((c for c in classifier_status(ctx.store) if c.cohort == cohort), None)
    known = ctx.rules is not None and any(r.name == cohort for r in ctx.rules.cohorts)
    if not found and before is None and status is None and not known:
        raise HTTPException(404, f"cohort {cohort!r} has no traces")
    return ctx.render(
        request,
        "cohort.html.j2",
        cohort=cohort,
        traces=found[:size],
        next_before=found[size - 1].trace_id if len(found) > size else None,
        classifier=status,
        errors=classifier_errors(ctx.store, cohort) if status and status.errors else [],
    )


@router.get("/traces/{trace_id}", response_class=HTMLResponse)
def trace_page(request: Request, trace_id: str) -> Response:
    """One trace: input, output, context, tool calls, usage and its spans."""
    ctx = context_of(request)
    ctx.guard_page(request)
    found = get_trace(ctx.store, trace_id)
    if found is None:
        raise HTTPException(404, f"no trace {trace_id!r}")
    trace, spans = found
    return ctx.render(
        request,
        "trace.html.j2",
        trace=trace,
        spans=[(span, span_facts(span)) for span in spans],
    )
