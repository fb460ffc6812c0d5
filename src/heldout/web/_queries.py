"""The dashboard's reads and its one write, in SQL: every page aggregates in the
database and reads one page of rows, so a store with 100,000 scored rows stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, cast

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection, RowMapping

from heldout._errors import ConfigError
from heldout.data import JudgeVerdict
from heldout.store import Store, StoredSample, StoredScore
from heldout.store._schema import runs, samples, scores
from heldout.store._sql import as_utc, stored_sample, stored_score

PREVIEW = 240
"""Characters of an input shown in a row list (the drill-down shows it whole)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunLine(_Frozen):
    """A run in the runs list, with its scores counted."""

    id: str
    """The run id."""
    name: str
    """The run's name."""
    kind: str
    """eval, regress, production, ..."""
    status: str
    """running, done, failed, interrupted."""
    created_at: datetime
    """When the run began (UTC)."""
    n_scores: int
    """Scores of every status."""
    n_error: int
    """Error scores (never averaged in)."""
    fail_rate: float | None
    """Failed over ok scores with a verdict, pooled over evaluators and cohorts."""


class TrendPoint(_Frozen):
    """The fail rate of one cohort in one run: a point of the over-time chart."""

    run_id: str
    """The run."""
    at: datetime
    """When the run began (UTC)."""
    cohort: str
    """The cohort."""
    n_verdict: int
    """Ok scores with a pass/fail verdict."""
    n_error: int
    """Error scores."""
    fail_rate: float | None
    """Failed over ``n_verdict``."""


class RowLine(_Frozen):
    """One row of a run in the drill-down list."""

    sample_key: str
    """The row key within the run."""
    sample_id: str
    """The sample id."""
    cohort: str
    """The cohort."""
    checkpoint: str | None
    """The checkpoint, if any."""
    preview: str
    """The start of the input."""
    n_pass: int
    """Ok scores that passed."""
    n_fail: int
    """Ok scores that failed."""
    n_error: int
    """Error scores."""


def count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    """``SUM(CASE WHEN condition THEN 1 ELSE 0 END)``, 0 on no rows."""
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


_OK = scores.c.status == "ok"
_FAILED = sa.and_(_OK, scores.c.passed.is_(sa.false()))
VERDICT = sa.and_(_OK, scores.c.passed.is_not(None))
"""An ok score with a pass/fail verdict."""


def _rate(failed: int, verdicts: int) -> float | None:
    return failed / verdicts if verdicts else None


Memo = MutableMapping[Any, Any]
"""Counts of finished runs, kept between requests by (what, run id, updated_at): a run
that is not running anymore does not change until it is reopened."""


def _per_run(
    conn: Connection,
    found: Sequence[RowMapping],
    memo: Memo | None,
    what: str,
    compute: Callable[[Connection, list[str]], dict[str, Any]],
) -> dict[str, Any]:
    """``compute`` for the runs of ``found``, from ``memo`` for finished runs it holds."""
    memo = {} if memo is None else memo
    keys = {r["id"]: (what, r["id"], r["updated_at"]) for r in found}
    out = {rid: memo[key] for rid, key in keys.items() if key in memo}
    todo = [rid for rid in keys if rid not in out]
    fresh = compute(conn, todo) if todo else {}
    for r in found:
        if r["id"] in fresh:
            out[r["id"]] = fresh[r["id"]]
            if r["status"] != "running":
                memo[keys[r["id"]]] = fresh[r["id"]]
    return out


def _run_counts(conn: Connection, ids: list[str]) -> dict[str, Any]:
    query = (
        sa.select(
            scores.c.run_id,
            sa.func.count().label("n"),
            count(scores.c.status == "error").label("n_error"),
            count(_FAILED).label("n_failed"),
            count(VERDICT).label("n_verdict"),
        )
        .where(scores.c.run_id.in_(ids))
        .group_by(scores.c.run_id)
    )
    found: dict[str, Any] = {rid: (0, 0, 0, 0) for rid in ids}
    for row in conn.execute(query).mappings():
        found[row["run_id"]] = tuple(int(row[k]) for k in ("n", "n_error", "n_failed", "n_verdict"))
    return found


def run_lines(
    store: Store, *, limit: int, offset: int = 0, memo: Memo | None = None
) -> list[RunLine]:
    """A page of runs, newest first, each with its scores counted in SQL (finished runs'
    counts kept in ``memo``)."""
    page = sa.select(runs).order_by(runs.c.created_at.desc(), runs.c.id).limit(limit).offset(offset)

    def work(conn: Connection) -> list[RunLine]:
        found = conn.execute(page).mappings().all()
        counts = _per_run(conn, found, memo, "counts", _run_counts)
        lines = []
        for r in found:
            n, n_error, n_failed, n_verdict = counts[r["id"]]
            lines.append(
                RunLine(
                    id=r["id"],
                    name=r["name"],
                    kind=r["kind"],
                    status=r["status"],
                    created_at=as_utc(r["created_at"]),
                    n_scores=n,
                    n_error=n_error,
                    fail_rate=_rate(n_failed, n_verdict),
                )
            )
        return lines

    return store.transaction("list runs", work)


def _trend_points(conn: Connection, ids: list[str]) -> dict[str, Any]:
    query = (
        sa.select(
            scores.c.run_id,
            scores.c.cohort,
            count(VERDICT).label("n_verdict"),
            count(_FAILED).label("n_failed"),
            count(scores.c.status == "error").label("n_error"),
        )
        # Rows of a checkpoint sweep are not one policy over time: the by-checkpoint
        # view shows them.
        .where(scores.c.run_id.in_(ids), scores.c.checkpoint.is_(None))
        .group_by(scores.c.run_id, scores.c.cohort)
        .order_by(scores.c.cohort)
    )
    found: dict[str, Any] = {rid: [] for rid in ids}
    for r in conn.execute(query).mappings():
        found[r["run_id"]].append(
            (r["cohort"], int(r["n_verdict"]), int(r["n_failed"]), int(r["n_error"]))
        )
    return found


def fail_rate_trend(
    store: Store, *, last_runs: int = 60, memo: Memo | None = None
) -> list[TrendPoint]:
    """Per run (the latest ``last_runs``) and cohort: the fail rate, oldest run first
    (finished runs' points kept in ``memo``).

    Rows with a checkpoint (regression sweeps) are left out.
    """
    recent = sa.select(runs).order_by(runs.c.created_at.desc(), runs.c.id).limit(last_runs)

    def work(conn: Connection) -> list[TrendPoint]:
        found = list(reversed(conn.execute(recent).mappings().all()))
        points = _per_run(conn, found, memo, "trend", _trend_points)
        return [
            TrendPoint(
                run_id=r["id"],
                at=as_utc(r["created_at"]),
                cohort=cohort,
                n_verdict=n_verdict,
                n_error=n_error,
                fail_rate=_rate(n_failed, n_verdict),
            )
            for r in found
            for cohort, n_verdict, n_failed, n_error in points[r["id"]]
        ]

    return store.transaction("read the fail-rate trend", work)


def latest_checkpoint_run(store: Store) -> str | None:
    """The newest run whose rows carry checkpoints (a regression eval), or None."""
    has = sa.exists().where(samples.c.run_id == runs.c.id, samples.c.checkpoint.is_not(None))
    query = sa.select(runs.c.id).where(has).order_by(runs.c.created_at.desc()).limit(1)
    return store.transaction("find a checkpoint run", lambda c: c.execute(query).scalar())


def checkpoints_of(store: Store, run_id: str) -> list[str]:
    """The distinct checkpoints of a run's rows, by name."""
    query = (
        sa.select(samples.c.checkpoint)
        .where(samples.c.run_id == run_id, samples.c.checkpoint.is_not(None))
        .distinct()
        .order_by(samples.c.checkpoint)
    )
    return store.transaction("list checkpoints", lambda c: [r[0] for r in c.execute(query)])


def row_page(
    store: Store,
    run_id: str,
    *,
    limit: int,
    after: str | None = None,
    cohort: str | None = None,
    checkpoint: str | None = None,
    failed_only: bool = False,
) -> list[RowLine]:
    """A page of a run's rows by sample key (keyset pagination: ``after`` the last key)."""
    s = samples.c
    preview = sa.func.substr(s.input, 1, PREVIEW).label("preview")
    query = sa.select(s.sample_key, s.sample_id, s.cohort, s.checkpoint, preview)
    query = query.where(s.run_id == run_id)
    if after is not None:
        query = query.where(s.sample_key > after)
    if cohort:
        query = query.where(s.cohort == cohort)
    if checkpoint:
        query = query.where(s.checkpoint == checkpoint)
    if failed_only:
        query = query.where(
            sa.exists().where(
                scores.c.run_id == run_id, scores.c.sample_key == s.sample_key, _FAILED
            )
        )
    query = query.order_by(s.sample_key).limit(limit)

    def work(conn: Connection) -> list[RowLine]:
        found = conn.execute(query).mappings().all()
        keys = [row["sample_key"] for row in found]
        counts = {
            row[0]: row[1:]
            for row in conn.execute(
                sa.select(
                    scores.c.sample_key,
                    count(sa.and_(_OK, scores.c.passed.is_(sa.true()))),
                    count(_FAILED),
                    count(scores.c.status == "error"),
                )
                .where(scores.c.run_id == run_id, scores.c.sample_key.in_(keys))
                .group_by(scores.c.sample_key)
            )
        }
        lines = []
        for row in found:
            n_pass, n_fail, n_error = counts.get(row["sample_key"], (0, 0, 0))
            lines.append(
                RowLine(
                    sample_key=row["sample_key"],
                    sample_id=row["sample_id"],
                    cohort=row["cohort"],
                    checkpoint=row["checkpoint"],
                    preview=row["preview"] or "",
                    n_pass=int(n_pass),
                    n_fail=int(n_fail),
                    n_error=int(n_error),
                )
            )
        return lines

    return store.transaction(f"read rows of run {run_id!r}", work)


def row_detail(
    store: Store, run_id: str, sample_key: str
) -> tuple[StoredSample, list[StoredScore], list[tuple[str | None, str]]] | None:
    """A row, every score on it, and its copies in other checkpoints; None if absent."""

    def work(
        conn: Connection,
    ) -> tuple[StoredSample, list[StoredScore], list[tuple[str | None, str]]] | None:
        row = (
            conn.execute(
                sa.select(samples).where(
                    samples.c.run_id == run_id, samples.c.sample_key == sample_key
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        found = conn.execute(
            sa.select(scores)
            .where(scores.c.run_id == run_id, scores.c.sample_key == sample_key)
            .order_by(scores.c.evaluator)
        ).mappings()
        siblings = conn.execute(
            sa.select(samples.c.checkpoint, samples.c.sample_key)
            .where(samples.c.run_id == run_id, samples.c.sample_id == row["sample_id"])
            .order_by(samples.c.sample_key)
        ).all()
        return (
            stored_sample(row),
            [stored_score(s) for s in found],
            [(row[0], str(row[1])) for row in siblings],
        )

    return store.transaction(f"read row {sample_key!r} of run {run_id!r}", work)


class VerdictSample(_Frozen):
    """The verdicts the disagreement page compares, and how many rows they cover."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    verdicts: dict[str, list[JudgeVerdict]]
    """Each run's verdicts, by its judge spec (or run id when the run has several)."""
    rows: int
    """Rows of the first run."""
    used: int
    """Rows whose verdicts are compared: all, or every ``step``-th by row key."""
    step: int
    """1 when every row is compared."""


def sampled_verdicts(store: Store, run_ids: Sequence[str], *, max_rows: int) -> VerdictSample:
    """The runs' verdicts on at most ``max_rows`` rows of the first run: every row, or a
    systematic sample (every k-th row key), so the page stays quick on large runs.

    Raises:
        ConfigError: A run is named twice or is not in the store.
    """
    from heldout.analysis import verdicts_from_scores

    if len(set(run_ids)) != len(run_ids):
        raise ConfigError(f"a run is named twice in {list(run_ids)}; give each judge's run once")
    for run_id in run_ids:
        if store.get_run(run_id) is None:
            raise ConfigError(f"no run {run_id!r} in the store")
    keys_query = (
        sa.select(samples.c.sample_key)
        .where(samples.c.run_id == run_ids[0])
        .order_by(samples.c.sample_key)
    )
    keys = store.transaction("list rows", lambda c: [r[0] for r in c.execute(keys_query)])
    step = max(1, -(-len(keys) // max_rows))
    chosen = keys[::step]
    columns = [c for c in scores.c if c.name != "metadata"] + [
        scores.c.metadata["p_yes"].label("p_yes")
    ]

    def read(conn: Connection, run_id: str) -> list[StoredScore]:
        out: list[StoredScore] = []
        for start in range(0, len(chosen), 500):
            query = sa.select(*columns).where(
                scores.c.run_id == run_id, scores.c.sample_key.in_(chosen[start : start + 500])
            )
            for row in conn.execute(query).mappings():
                # Only P(Yes) of the metadata counts for a verdict; the rest stays unread.
                p_yes = row["p_yes"]
                fields = {**row, "metadata": {"p_yes": p_yes} if p_yes is not None else {}}
                out.append(stored_score(cast(RowMapping, fields)))
        return out

    verdicts: dict[str, list[JudgeVerdict]] = {}
    for run_id in run_ids:
        found = store.transaction(f"read verdicts of {run_id!r}", partial(read, run_id=run_id))
        specs = {s.judge for s in found if s.judge}
        name = specs.pop() if len(specs) == 1 else run_id
        name = f"{name} ({run_id})" if name in verdicts else name
        verdicts[name] = verdicts_from_scores(found, judge=name)
    return VerdictSample(verdicts=verdicts, rows=len(keys), used=len(chosen), step=step)
