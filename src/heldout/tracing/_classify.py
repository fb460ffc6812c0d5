"""Classifier cohort rules: a judge decides which traces join a cohort.

Placement (:mod:`._placement`) records every trace that passed a cohort's cheap tests
as *pending*; :func:`classify_traces` judges the pending ones (and retries the ones
whose judgment failed) through the normal judge client, with its response cache in
the store, its retries and its per-endpoint concurrency limit, then places them
again so the yeses join. A judge error is written next to the trace (kind, message,
attempts): it is counted and shown, never taken as a yes or a no, and judged again at
the next classification.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection

from heldout.config import Settings, load_settings
from heldout.data import Sample
from heldout.evaluators import Evaluator, Score, Verdict
from heldout.evaluators._criteria import YES_NO, sample_blocks, yes_probability
from heldout.evaluators._prompt import DATA_RULES
from heldout.evaluators._safety import choice_request, tally
from heldout.judges import JudgeClient, make_judge
from heldout.judges._types import JudgeRequest
from heldout.store import Store
from heldout.store._schema import cohort_classes, traces
from heldout.store._sql import as_utc, now
from heldout.tracing._models import TraceRecord
from heldout.tracing._placement import verdict_basis
from heldout.tracing._rules import Classify, CohortRule, CohortRules, TextField
from heldout.tracing._schedule import build_evaluator
from heldout.tracing._storage import rebuild, trace_from_row, trace_sample


class CohortQuestion(Evaluator):
    """A Yes/No question about a trace; the score is the judge's P(Yes).

    Args:
        question: The question, e.g. "Is the user asking for a refund?".
        reads: The trace fields shown to the judge; a trace missing one is skipped.
        judge: A judge spec or client; None uses the configured eval judge.
        threshold: The P(Yes) at or above which the answer is yes.
    """

    name = "cohort_question"
    template_version = "cohort-question-v1"
    requires = ("input",)

    def __init__(
        self,
        question: str,
        *,
        reads: Sequence[TextField] = ("input",),
        judge: str | JudgeClient | None = None,
        threshold: float | None = None,
    ) -> None:
        super().__init__(judge=judge, threshold=threshold)
        self.question = question
        self.reads = tuple(reads)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "question": self.question, "reads": list(self.reads)}

    def request(self, sample: Sample) -> JudgeRequest:
        """The judge request for ``sample``."""
        system = (
            "You sort the traffic of an AI application into cohorts for evaluation: "
            "you answer one question about one exchange between a user and the "
            f"application.\n{DATA_RULES}\n\nQuestion: {self.question}\n\n"
            "Answer with a single word: Yes or No."
        )
        user = f"{sample_blocks(sample, self.reads)}\n\nQuestion: {self.question} Answer Yes or No."
        return choice_request(system, user, YES_NO, self.template_version)

    async def score(self, sample: Sample, client: JudgeClient) -> Score:
        missing = [field for field in self.reads if not getattr(sample, field)]
        if missing:
            reason = f"the trace has no {', '.join(missing)} to classify"
            return self.make_score(sample, client, "skipped", reason=reason)
        return await super().score(sample, client)

    async def judge(self, sample: Sample, client: JudgeClient) -> Verdict:
        reply = await client.call(self.request(sample))
        p_yes = yes_probability(reply, client.spec)
        calls, cached = tally([reply])
        answer = "yes" if p_yes >= self.threshold else "no"
        return Verdict(
            value=p_yes,
            reason=f"The judge answers {answer} (P(Yes) = {p_yes:.2f}).",
            metadata={"p_yes": p_yes},
            calls=calls,
            cached_calls=cached,
        )


def classifier_for(classify: Classify, settings: Settings) -> Evaluator:
    """The evaluator a ``classify`` entry describes (its judge spec set by the caller).

    Raises:
        ConfigError: The evaluator type is unknown or takes none of the options given.
    """
    if classify.evaluator is not None:
        return build_evaluator(classify.evaluator, settings)
    return CohortQuestion(
        classify.question or "", reads=classify.reads, threshold=classify.threshold
    )


class ClassifyResult(BaseModel):
    """What one classification of a cohort did."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cohort: str
    """The cohort."""
    judged: int = 0
    """Traces with a verdict now (yes or no)."""
    joined: int = 0
    """Of those, the ones the verdict lets join."""
    errors: int = 0
    """Traces whose judgment failed: recorded, and judged again next time."""
    skipped: int = 0
    """Traces the classifier cannot read (e.g. no output for a question about it)."""


_PAGE = 64


async def classify_traces(
    store: Store,
    rules: CohortRules,
    *,
    settings: Settings | None = None,
    judge: str | None = None,
    at: datetime | None = None,
) -> list[ClassifyResult]:
    """Judge every trace awaiting a cohort's classifier (pending, or failed before),
    within the cohort's window, then place the judged traces again.

    Args:
        store: The store: the traces, the verdicts, and the judge's response cache.
        rules: The cohort rules; cohorts without ``classify`` are left alone.
        settings: Judge endpoints and limits (default: ``heldout.toml`` and env).
        judge: The judge of classifiers that name none (default: the eval judge).
        at: The time the windows are measured from (default now).

    Returns:
        One result per cohort with a classifier.

    Raises:
        ConfigError: A classifier's evaluator or judge spec is invalid.
        StoreError: The store refused a read or a write.
    """
    settings = settings or load_settings()
    at = at or now()
    clients: dict[str, JudgeClient] = {}
    results: list[ClassifyResult] = []
    try:
        for rule in rules.cohorts:
            if rule.classify is None:
                continue
            classify = rule.classify
            own = classify.evaluator.judge if classify.evaluator is not None else None
            spec = classify.judge or own or judge or settings.eval_judge
            if spec not in clients:
                made = make_judge(spec, settings)
                clients[spec] = JudgeClient(made, settings=settings, cache=store)
            evaluator = classifier_for(classify, settings)
            results.append(
                await _classify_cohort(store, rules, rule, classify, evaluator, clients[spec], at)
            )
    finally:
        for client in clients.values():
            await client.aclose()
    return results


async def _classify_cohort(
    store: Store,
    rules: CohortRules,
    rule: CohortRule,
    classify: Classify,
    evaluator: Evaluator,
    client: JudgeClient,
    at: datetime,
) -> ClassifyResult:
    counts = {"judged": 0, "joined": 0, "errors": 0, "skipped": 0}
    after: tuple[datetime, str] | None = None
    oldest = at - rules.window_of(rule)
    while True:
        page = await asyncio.to_thread(_awaiting, store, rule.name, oldest, after)
        if not page:
            break
        after = (page[-1][0].start_time, page[-1][0].trace_id)
        scored = await asyncio.gather(
            *(evaluator.score(trace_sample(record, rule.name), client) for record, _ in page)
        )
        rows = []
        for (record, attempts), score in zip(page, scored, strict=True):
            joins = None
            if score.status == "ok":
                joins = bool(score.passed) == (classify.join_on == "pass")
                counts["judged"] += 1
                counts["joined"] += joins
            counts["errors"] += score.status == "error"
            counts["skipped"] += score.status == "skipped"
            rows.append(_verdict_row(rule.name, record, score, joins, attempts, classify, at))
        ids = [record.trace_id for record, _ in page]
        work = partial(_write_and_place, rows=rows, ids=ids, rules=rules, at=at)
        await asyncio.to_thread(
            store.transaction,
            f"record the classifier's verdicts on {len(rows)} traces",
            partial(work, dialect=store.dialect),
            write=True,
        )
    return ClassifyResult(cohort=rule.name, **counts)


def _awaiting(
    store: Store, cohort: str, oldest: datetime, after: tuple[datetime, str] | None
) -> list[tuple[TraceRecord, int]]:
    """A page of the cohort's traces awaiting the classifier, oldest first."""
    c, t = cohort_classes.c, traces.c
    query = (
        sa.select(traces, c.attempts)
        .join(cohort_classes, c.trace_id == t.trace_id)
        .where(
            c.cohort == cohort,
            c.status.in_(("pending", "error")),
            t.start_time >= oldest,
        )
    )
    if after is not None:
        query = query.where(
            sa.or_(
                t.start_time > after[0], sa.and_(t.start_time == after[0], t.trace_id > after[1])
            )
        )
    query = query.order_by(t.start_time, t.trace_id).limit(_PAGE)
    rows = store.transaction(
        f"list traces awaiting the classifier of {cohort!r}",
        lambda conn: conn.execute(query).mappings().all(),
    )
    return [(trace_from_row(row), int(row["attempts"])) for row in rows]


def _verdict_row(
    cohort: str,
    record: TraceRecord,
    score: Score,
    joins: bool | None,
    attempts: int,
    classify: Classify,
    at: datetime,
) -> dict[str, Any]:
    return {
        "cohort": cohort,
        "trace_id": record.trace_id,
        "basis": verdict_basis(classify, record),
        "status": score.status,
        "value": score.value,
        "joins": joins,
        "judge": score.judge,
        "reason": score.reason or None,
        "error_kind": score.error_kind,
        "error": score.error,
        "attempts": attempts + 1,
        "updated_at": at,
    }


def _write_and_place(
    conn: Connection,
    dialect: str,
    rows: list[dict[str, Any]],
    ids: list[str],
    rules: CohortRules,
    at: datetime,
) -> None:
    # Only over the verdict row it judged: if the trace changed meanwhile (late spans),
    # placement already reset it to pending on the new text, and that stands.
    c = cohort_classes.c
    for row in rows:
        values = {k: v for k, v in row.items() if k not in ("cohort", "trace_id", "basis")}
        conn.execute(
            cohort_classes.update()
            .where(
                c.cohort == row["cohort"], c.trace_id == row["trace_id"], c.basis == row["basis"]
            )
            .values(**values)
        )
    rebuild(conn, dialect, ids, rules, at)


# -- reading --------------------------------------------------------------------------


class ClassifierStatus(BaseModel):
    """Where a cohort's classifier stands: traces by the state of their verdict."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cohort: str
    """The cohort."""
    awaiting: int
    """Traces not judged yet."""
    errors: int
    """Traces whose last judgment failed (judged again at the next classification)."""
    joined: int
    """Traces the verdict let join (members, unless a near-duplicate, the window or the
    cap keeps them out)."""
    rejected: int
    """Traces the verdict kept out."""
    skipped: int
    """Traces the classifier cannot read."""


class ClassifierError(BaseModel):
    """A trace whose classification failed, as last recorded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trace_id: str
    """The trace."""
    error_kind: str | None
    """The judge error's kind (timeout, rate_limited, parse_error, ...)."""
    error: str | None
    """Its message."""
    attempts: int
    """Classifications tried so far."""
    at: datetime
    """When the last one failed (UTC)."""


def classifier_status(store: Store) -> list[ClassifierStatus]:
    """Every cohort with classifier verdicts, by name, counted in SQL."""
    c = cohort_classes.c

    def count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    ok = c.status == "ok"
    query = (
        sa.select(
            c.cohort,
            count(c.status == "pending").label("awaiting"),
            count(c.status == "error").label("errors"),
            count(sa.and_(ok, c.joins.is_(sa.true()))).label("joined"),
            count(sa.and_(ok, c.joins.is_(sa.false()))).label("rejected"),
            count(c.status == "skipped").label("skipped"),
        )
        .group_by(c.cohort)
        .order_by(c.cohort)
    )
    rows = store.transaction(
        "count the classifiers' verdicts", lambda conn: conn.execute(query).mappings().all()
    )
    return [ClassifierStatus.model_validate({k: row[k] for k in row}) for row in rows]


def classifier_errors(store: Store, cohort: str, *, limit: int = 20) -> list[ClassifierError]:
    """The cohort's latest classification errors, newest first."""
    c = cohort_classes.c
    query = (
        sa.select(c.trace_id, c.error_kind, c.error, c.attempts, c.updated_at)
        .where(c.cohort == cohort, c.status == "error")
        .order_by(c.updated_at.desc(), c.trace_id)
        .limit(limit)
    )
    rows = store.transaction(
        f"read the classifier errors of {cohort!r}",
        lambda conn: conn.execute(query).mappings().all(),
    )
    return [
        ClassifierError(
            trace_id=row["trace_id"],
            error_kind=row["error_kind"],
            error=row["error"],
            attempts=int(row["attempts"]),
            at=as_utc(row["updated_at"]),
        )
        for row in rows
    ]
