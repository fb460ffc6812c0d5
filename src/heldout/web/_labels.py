"""Spot-check labels recorded in the dashboard: stored, scored against the judge in SQL,
and exported as a spot-check file that ``heldout spotcheck score`` reads.

On most axes a person says whether the output passes (``pass``/``fail``). On a
pairwise axis (the scores of :class:`~heldout.evaluators.WinRate`: the output against
the sample's reference) a person gives a preference instead: ``A`` (the output is
better), ``B`` (the reference is) or ``tie``, compared with the judge's debiased
preference, P(A better) above, below or at 0.5.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from heldout.analysis import wilson_interval
from heldout.store import Store
from heldout.store._schema import samples, scores, spot_check_labels
from heldout.store._sql import as_utc, clean_text, now, upsert
from heldout.web._queries import VERDICT, count

SpotLabel = Literal["pass", "fail", "skip", "A", "B", "tie"]
LabelKind = Literal["verdict", "preference"]
VERDICT_LABELS = ("pass", "fail", "skip")
"""What a person may answer on a pass/fail axis."""
PREFERENCE_LABELS = ("A", "B", "tie", "skip")
"""What a person may answer on a pairwise axis."""
_EXACT = 1e-9  # float rounding around 0.5, as in PairwiseJudge


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SpotCheckLabel(_Frozen):
    """A person's label of one row on one axis, recorded in the dashboard."""

    run_id: str
    """The run of the row."""
    sample_key: str
    """The row key."""
    axis: str
    """The evaluator (axis) labelled."""
    labeler: str = Field(default="dashboard", min_length=1, max_length=80)
    """Who labelled it."""
    label: SpotLabel
    """pass or fail; A, B or tie on a pairwise axis; or skip (will not label)."""
    note: str | None = Field(default=None, max_length=2000)
    """A free note."""
    created_at: datetime | None = None
    """When it was recorded (UTC); set by the store."""


class LabelAccuracy(_Frozen):
    """How often the run's judge agreed with the dashboard's labels on one axis."""

    axis: str
    """The evaluator."""
    judge: str
    """The judge spec of its scores."""
    kind: LabelKind
    """``verdict`` (pass/fail labels) or ``preference`` (A/B/tie labels)."""
    n: int
    """Labelled rows the judge gave an ok verdict on."""
    n_agree: int
    """Of those, the rows where the judge agrees with the person."""
    accuracy: float | None
    """``n_agree / n``."""
    ci_low: float | None
    """Lower bound of the 95% Wilson interval."""
    ci_high: float | None
    """Upper bound of the 95% Wilson interval."""


def put_label(store: Store, label: SpotCheckLabel) -> None:
    """Record ``label``, replacing the same labeler's earlier label of the row and axis."""
    row = clean_text(label.model_dump() | {"created_at": now()})
    keys = ["run_id", "sample_key", "axis", "labeler"]
    statement = upsert(store.dialect, spot_check_labels, keys, ["label", "note", "created_at"])
    store.transaction("record a spot-check label", lambda c: c.execute(statement, row), write=True)


def labels_of(store: Store, run_id: str, sample_key: str | None = None) -> list[SpotCheckLabel]:
    """The labels of a run (or of one row), oldest first."""
    query = sa.select(spot_check_labels).where(spot_check_labels.c.run_id == run_id)
    if sample_key is not None:
        query = query.where(spot_check_labels.c.sample_key == sample_key)
    query = query.order_by(spot_check_labels.c.created_at, spot_check_labels.c.sample_key)
    rows = store.transaction("read spot-check labels", lambda c: c.execute(query).mappings().all())
    return [
        SpotCheckLabel.model_validate({**row, "created_at": as_utc(row["created_at"])})
        for row in rows
    ]


def next_to_label(
    store: Store, run_id: str, axis: str, *, labeler: str, after: str | None = None
) -> str | None:
    """The next row key (after ``after``) with an ok score on ``axis`` that ``labeler``
    has not labelled yet, or None when every one is."""
    sc, lb = scores.c, spot_check_labels.c
    labelled = sa.exists().where(
        lb.run_id == run_id, lb.sample_key == sc.sample_key, lb.axis == axis, lb.labeler == labeler
    )
    query = sa.select(sc.sample_key).where(
        sc.run_id == run_id, sc.evaluator == axis, sc.status == "ok", ~labelled
    )
    if after is not None:
        query = query.where(sc.sample_key > after)
    query = query.order_by(sc.sample_key).limit(1)
    return store.transaction("find a row to label", lambda c: c.execute(query).scalar())


def pairwise_axes(store: Store, run_id: str) -> set[str]:
    """The run's evaluators whose scores are pairwise preferences (P(output better))."""
    query = (
        sa.select(scores.c.evaluator)
        .where(scores.c.run_id == run_id, scores.c.template_version.like("pairwise-%"))
        .distinct()
    )
    return store.transaction("find pairwise axes", lambda c: {r[0] for r in c.execute(query)})


def label_accuracy(store: Store, run_id: str, confidence: float = 0.95) -> list[LabelAccuracy]:
    """Per axis and judge: agreement of the run's ok verdicts with people's pass/fail,
    and of its pairwise preferences with people's A/B/tie."""
    sc, lb = scores.c, spot_check_labels.c
    preference = sa.case(
        (sc.value > 0.5 + _EXACT, "A"), (sc.value < 0.5 - _EXACT, "B"), else_="tie"
    )
    agree = sa.or_(
        sa.and_(lb.label == "pass", sc.passed.is_(sa.true())),
        sa.and_(lb.label == "fail", sc.passed.is_(sa.false())),
        sa.and_(lb.label.in_(("A", "B", "tie")), lb.label == preference),
    )
    preferred = lb.label.in_(("A", "B", "tie"))
    kind = sa.case((preferred, "preference"), else_="verdict")
    # Only ok scores carry a verdict (pass/fail) or a preference (a value).
    ok = sa.or_(
        sa.and_(~preferred, VERDICT), sa.and_(preferred, sc.status == "ok", sc.value.is_not(None))
    )
    query = (
        sa.select(
            sc.evaluator,
            sc.judge,
            kind.label("kind"),
            sa.func.count().label("n"),
            count(agree).label("n_agree"),
        )
        .select_from(
            spot_check_labels.join(
                scores,
                sa.and_(
                    sc.run_id == lb.run_id, sc.sample_key == lb.sample_key, sc.evaluator == lb.axis
                ),
            )
        )
        .where(lb.run_id == run_id, lb.label != "skip", ok)
        .group_by(sc.evaluator, sc.judge, kind)
        .order_by(sc.evaluator, sc.judge, kind)
    )
    rows = store.transaction("score labels", lambda c: c.execute(query).mappings().all())
    out = []
    for r in rows:
        n, n_agree = int(r["n"]), int(r["n_agree"])
        low, high = wilson_interval(n_agree, n, confidence) if n else (None, None)
        out.append(
            LabelAccuracy(
                axis=r["evaluator"],
                judge=r["judge"],
                kind=r["kind"],
                n=n,
                n_agree=n_agree,
                accuracy=n_agree / n if n else None,
                ci_low=low,
                ci_high=high,
            )
        )
    return out


def spotcheck_records(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The run's labels as the rows of a spot-check file (``heldout spotcheck score``
    reads it): one per item, the latest label when several people labelled it."""
    lb, s = spot_check_labels.c, samples.c
    query = (
        sa.select(lb.sample_key, lb.axis, lb.label, lb.note, s.sample_id, s.checkpoint, s.cohort)
        .select_from(
            spot_check_labels.join(
                samples, sa.and_(s.run_id == lb.run_id, s.sample_key == lb.sample_key)
            )
        )
        .where(lb.run_id == run_id)
        .order_by(lb.created_at)
    )
    rows = store.transaction("export labels", lambda c: c.execute(query).mappings().all())
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        latest[(r["sample_key"], r["axis"])] = {
            "sample_id": r["sample_id"],
            "checkpoint": r["checkpoint"],
            "cohort": r["cohort"],
            "axis": r["axis"],
            "human_label": r["label"],
            "notes": r["note"],
        }
    return list(latest.values())
