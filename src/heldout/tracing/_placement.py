"""Cohort placement: which traces are members of which cohort, decided in the store.

For each cohort, the rebuilt traces go through the tests cheapest first:

1. the rolling window, the conditions and the sample rate (no query);
2. near-duplicates of the cohort's members (an indexed lookup of band hashes, then
   an exact comparison with the few members found; see :mod:`._dedup`);
3. the classifier's verdict, for a cohort with ``classify``: a trace without a
   current verdict is recorded as *pending* and joins once
   :func:`~heldout.tracing.classify_traces` has judged it; an error stays recorded
   until a later classification succeeds;
4. near-duplicates among the traces of this batch, the oldest kept.

Then the window and the cap are trimmed. Everything runs inside the caller's
transaction: an ingest places its traces whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from heldout.store._schema import cohort_classes, cohort_member_bands, cohort_members, traces
from heldout.store._sql import upsert
from heldout.tracing._dedup import Banding, jaccard, words
from heldout.tracing._models import SpanRecord, TraceRecord
from heldout.tracing._rules import Classify, CohortRule, CohortRules

_BATCH = 500


def place(
    conn: Connection,
    dialect: str,
    records: Mapping[str, TraceRecord],
    groups: Mapping[str, Sequence[SpanRecord]],
    rules: CohortRules,
    at: datetime,
) -> dict[str, int]:
    """Re-place ``records`` (rebuilt traces, with their spans in ``groups``) in the
    cohorts of ``rules``.

    Returns:
        Per cohort, how many of ``records`` are members afterwards.
    """
    ids = list(records)
    names = [rule.name for rule in rules.cohorts]
    m = cohort_members.c
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        conn.execute(cohort_members.delete().where(m.trace_id.in_(batch), m.cohort.in_(names)))
    # Oldest first: of two near-identical inputs, the one seen first stays.
    ordered = sorted(records.values(), key=lambda r: (r.start_time, r.trace_id))
    for rule in rules.cohorts:
        window = at - rules.window_of(rule)
        candidates = [
            r
            for r in ordered
            if r.start_time >= window
            and rule.matches(r, groups[r.trace_id])
            and rule.sampled(r.trace_id, rules.seed)
        ]
        admitted = _place_in(conn, dialect, rule, candidates, ids, at)
        _insert_members(conn, dialect, rule, admitted, at)
    trim(conn, rules, at, names)
    counts = sa.select(m.cohort, sa.func.count()).group_by(m.cohort)
    found: dict[str, int] = {}
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        for row in conn.execute(counts.where(m.trace_id.in_(batch))):
            found[str(row[0])] = found.get(str(row[0]), 0) + int(row[1])
    return found


def _place_in(
    conn: Connection,
    dialect: str,
    rule: CohortRule,
    candidates: list[TraceRecord],
    rebuilt: Sequence[str],
    at: datetime,
) -> list[tuple[TraceRecord, list[int]]]:
    """The candidates that join ``rule``'s cohort, each with its band hashes."""
    banding = Banding.for_similarity(rule.dedup.similarity) if rule.dedup else None
    tokens = {r.trace_id: words(r.input) for r in candidates}
    hashes = {tid: banding.hashes(found) if banding else [] for tid, found in tokens.items()}
    if banding is not None:
        duplicates = _near_members(conn, rule, tokens, hashes)
        candidates = [r for r in candidates if r.trace_id not in duplicates]
    if rule.classify is not None:
        kept = {r.trace_id for r in candidates}
        stale = [tid for tid in rebuilt if tid not in kept]
        _forget_verdicts(conn, rule.name, stale)
        candidates = _classified(conn, dialect, rule.name, rule.classify, candidates, at)
    admitted: list[tuple[TraceRecord, list[int]]] = []
    for record in candidates:
        mine = tokens[record.trace_id]
        if banding is not None and any(
            set(hashes[record.trace_id]) & set(theirs)
            and jaccard(mine, tokens[other.trace_id]) >= banding.similarity
            for other, theirs in admitted
        ):
            continue
        admitted.append((record, hashes[record.trace_id]))
    return admitted


def _near_members(
    conn: Connection,
    rule: CohortRule,
    tokens: Mapping[str, frozenset[str]],
    hashes: Mapping[str, list[int]],
) -> set[str]:
    """The candidates whose input is near-identical to a current member's."""
    if rule.dedup is None:
        return set()
    wanted = sorted({h for found in hashes.values() for h in found})
    b = cohort_member_bands.c
    holders: dict[int, set[str]] = {}
    for start in range(0, len(wanted), _BATCH):
        chunk = wanted[start : start + _BATCH]
        query = sa.select(b.hash, b.trace_id).where(b.cohort == rule.name, b.hash.in_(chunk))
        for row in conn.execute(query):
            holders.setdefault(int(row.hash), set()).add(str(row.trace_id))
    compare: dict[str, set[str]] = {
        tid: set().union(*(holders.get(h, set()) for h in found)) for tid, found in hashes.items()
    }
    members = sorted(set().union(*compare.values()))
    texts: dict[str, frozenset[str]] = {}
    for start in range(0, len(members), _BATCH):
        batch = members[start : start + _BATCH]
        query = sa.select(traces.c.trace_id, traces.c.input).where(traces.c.trace_id.in_(batch))
        texts.update({str(row.trace_id): words(row.input) for row in conn.execute(query)})
    similarity = rule.dedup.similarity
    return {
        tid
        for tid, others in compare.items()
        if any(jaccard(tokens[tid], texts.get(o, frozenset())) >= similarity for o in others)
    }


# -- the classifier's verdicts --------------------------------------------------------


def verdict_basis(classify: Classify, record: TraceRecord) -> str:
    """What a verdict depends on: the classifier and the trace text it may read."""
    payload = {
        "classify": classify.model_dump(mode="json"),
        "input": record.input,
        "output": record.output,
        "context": record.context,
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def _classified(
    conn: Connection,
    dialect: str,
    cohort: str,
    classify: Classify,
    candidates: list[TraceRecord],
    at: datetime,
) -> list[TraceRecord]:
    """The candidates the classifier said join; the others without a current verdict
    are recorded as pending (a verdict on other text, or none yet, is not current)."""
    c = cohort_classes.c
    known: dict[str, Any] = {}
    ids = [r.trace_id for r in candidates]
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        query = sa.select(c.trace_id, c.basis, c.status, c.joins).where(
            c.cohort == cohort, c.trace_id.in_(chunk)
        )
        known.update({row.trace_id: row for row in conn.execute(query)})
    joined: list[TraceRecord] = []
    pending: list[dict[str, Any]] = []
    for record in candidates:
        basis = verdict_basis(classify, record)
        row = known.get(record.trace_id)
        if row is not None and row.basis == basis:
            if row.status == "ok" and row.joins:
                joined.append(record)
            continue  # pending, error (retried later), skipped, or a no
        pending.append(
            {
                "cohort": cohort,
                "trace_id": record.trace_id,
                "basis": basis,
                "status": "pending",
                "value": None,
                "joins": None,
                "judge": None,
                "reason": None,
                "error_kind": None,
                "error": None,
                "attempts": 0,
                "updated_at": at,
            }
        )
    if pending:
        statement = upsert(
            dialect,
            cohort_classes,
            ["cohort", "trace_id"],
            [col.name for col in cohort_classes.c if not col.primary_key],
        )
        for start in range(0, len(pending), _BATCH):
            conn.execute(statement, pending[start : start + _BATCH])
    return joined


def _forget_verdicts(conn: Connection, cohort: str, trace_ids: Sequence[str]) -> None:
    """Drop the verdicts of traces no longer up for the cohort (a test before the
    classifier now fails): nothing is pending for them."""
    c = cohort_classes.c
    for start in range(0, len(trace_ids), _BATCH):
        chunk = list(trace_ids[start : start + _BATCH])
        conn.execute(cohort_classes.delete().where(c.cohort == cohort, c.trace_id.in_(chunk)))


# -- members --------------------------------------------------------------------------


def _insert_members(
    conn: Connection,
    dialect: str,
    rule: CohortRule,
    admitted: Sequence[tuple[TraceRecord, list[int]]],
    at: datetime,
) -> None:
    if not admitted:
        return
    rows = [
        {
            "cohort": rule.name,
            "trace_id": record.trace_id,
            # NULL keys never collide: without dedup every trace gets in.
            "input_key": record.input_key if rule.dedup else None,
            "trace_time": record.start_time,
            "added_at": at,
        }
        for record, _ in admitted
    ]
    for start in range(0, len(rows), _BATCH):
        conn.execute(_insert_ignore(dialect), rows[start : start + _BATCH])
    if rule.dedup is None:
        return
    # Band rows only for members that got in: an input equal to a member's once
    # normalised is refused by the (cohort, input_key) constraint above.
    m = cohort_members.c
    present: set[str] = set()
    ids = [record.trace_id for record, _ in admitted]
    for start in range(0, len(ids), _BATCH):
        query = sa.select(m.trace_id).where(
            m.cohort == rule.name, m.trace_id.in_(ids[start : start + _BATCH])
        )
        present.update(str(tid) for (tid,) in conn.execute(query))
    bands = [
        {"cohort": rule.name, "trace_id": record.trace_id, "band": band, "hash": value}
        for record, found in admitted
        if record.trace_id in present
        for band, value in enumerate(found)
    ]
    for start in range(0, len(bands), _BATCH):
        conn.execute(cohort_member_bands.insert(), bands[start : start + _BATCH])


def _insert_ignore(dialect: str) -> Any:
    # No conflict target: a repeated trace (primary key) and an input equal to a
    # member's once normalised (the (cohort, input_key) constraint) are both ignored.
    if dialect == "sqlite":
        return sqlite.insert(cohort_members).on_conflict_do_nothing()
    return postgresql.insert(cohort_members).on_conflict_do_nothing()


def trim(conn: Connection, rules: CohortRules, at: datetime, names: Iterable[str]) -> None:
    """Drop members past their cohort's window, then the oldest past its cap (their
    band rows go with them)."""
    by_name = {rule.name: rule for rule in rules.cohorts}
    m = cohort_members.c
    for name in names:
        rule = by_name[name]
        conn.execute(
            cohort_members.delete().where(
                m.cohort == name, m.trace_time < at - rules.window_of(rule)
            )
        )
        if rule.cap is None:
            continue
        keep = (
            sa.select(m.trace_id)
            .where(m.cohort == name)
            .order_by(m.trace_time.desc(), m.trace_id.desc())
            .limit(rule.cap)
        )
        conn.execute(
            cohort_members.delete().where(
                m.cohort == name, m.trace_id.not_in(keep.scalar_subquery())
            )
        )
