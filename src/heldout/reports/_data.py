"""What a report shows, read once from the store and arranged for the template.

Everything here is plain data: the template only loops and formats. Only ``ok``
scores count as scores; ``error`` and ``skipped`` ones are counted and listed beside
them, never averaged in and never compared as a pass or a fail.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from heldout._errors import StoreError
from heldout.analysis import axis_results
from heldout.store import CohortAggregate, RunRecord, Store, StoredSample, StoredScore

Key = tuple[str | None, str]
"""(checkpoint, sample id): one output of one prompt."""


@dataclass(frozen=True)
class Counts:
    """Scores of a run by status."""

    total: int
    ok: int
    error: int
    skipped: int
    failed: int
    """``ok`` scores whose verdict is a fail."""


@dataclass(frozen=True)
class Cell:
    """One checkpoint's aggregate in a table row; None when it has no scores there."""

    aggregate: CohortAggregate | None
    best: bool = False
    """The highest mean of its row, when the row's checkpoints differ."""


@dataclass(frozen=True)
class TableRow:
    """One evaluator on one cohort, one cell per checkpoint."""

    evaluator: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class CohortTable:
    """The table of one cohort (or of every cohort together)."""

    cohort: str
    rows: tuple[TableRow, ...]


@dataclass(frozen=True)
class Change:
    """A row whose verdict flipped between the baseline and a later checkpoint."""

    sample_id: str
    cohort: str
    evaluator: str
    anchor: str
    """The id of the row's drill-down."""
    before: StoredScore
    after: StoredScore
    output: str | None
    """The later checkpoint's output, when stored."""


@dataclass(frozen=True)
class CheckpointChanges:
    """What one checkpoint newly fails and newly passes, against the baseline."""

    checkpoint: str
    baseline: str
    newly_fails: tuple[Change, ...]
    newly_passes: tuple[Change, ...]
    compared: int
    """(row, evaluator) pairs with an ``ok`` verdict on both sides."""
    not_compared: int
    """Pairs left out: an error, a skip or no verdict on either side, or a missing score."""


@dataclass(frozen=True)
class RowOutput:
    """One checkpoint's output for a prompt, with every evaluator's score of it."""

    checkpoint: str | None
    output: str | None
    scores: tuple[StoredScore, ...]


@dataclass(frozen=True)
class DrillRow:
    """One prompt of the run: its texts and each checkpoint's output and scores."""

    anchor: str
    sample_id: str
    cohort: str
    sample: StoredSample | None
    """The prompt as stored (the baseline's copy); None if only scores were stored."""
    outputs: tuple[RowOutput, ...]
    changed: bool
    """A later checkpoint newly fails or newly passes this row."""


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows about one run."""

    run: RunRecord
    checkpoints: tuple[str | None, ...]
    """In run order; the first is the baseline. ``(None,)`` for a plain eval."""
    cohorts: tuple[str, ...]
    evaluators: tuple[str, ...]
    judges: tuple[str, ...]
    counts: Counts
    errors_by_kind: dict[str, int]
    errors: tuple[StoredScore, ...]
    aggregates: tuple[CohortAggregate, ...]
    overall: CohortTable
    tables: tuple[CohortTable, ...]
    changes: tuple[CheckpointChanges, ...]
    rows: tuple[DrillRow, ...]
    axes: dict[str, dict[str, dict[str | None, float]]]
    """evaluator → axis → checkpoint → mean axis score (``metadata["axes"]``)."""

    @property
    def anchors(self) -> dict[str, str]:
        """Sample id → the id of its drill-down."""
        return {row.sample_id: row.anchor for row in self.rows}


def collect(store: Store, run_id: str) -> ReportData:
    """Read run ``run_id`` from ``store`` and arrange it for the report.

    Raises:
        StoreError: There is no such run, or the store cannot be read.
    """
    run = store.get_run(run_id)
    if run is None:
        raise StoreError(
            f"No run {run_id!r} in the store at {store.url}: pass the id of a run "
            "listed by Store.list_runs()."
        )
    scores = store.scores(run_id)
    samples = store.samples(run_id)
    aggregates = tuple(store.aggregate(run_id))
    checkpoints = _checkpoint_order(run, scores, samples)
    cohorts = tuple(sorted({s.cohort for s in scores} | {s.cohort for s in samples}))
    evaluators = tuple(sorted({s.evaluator for s in scores}))
    judges = tuple(sorted({s.judge for s in scores if s.judge}))
    if not judges and isinstance(run.config.get("judge"), str):
        judges = (run.config["judge"],)

    by_key: dict[Key, dict[str, StoredScore]] = defaultdict(dict)
    for score in scores:
        by_key[(score.checkpoint, score.sample_id)][score.evaluator] = score
    errors = tuple(s for s in scores if s.status == "error")
    kinds: dict[str, int] = defaultdict(int)
    for score in errors:
        kinds[score.error_kind or "unknown"] += 1

    sample_ids = _sample_order(scores, samples, cohorts)
    anchors = {sample_id: f"row-{n}" for n, sample_id in enumerate(sample_ids, start=1)}
    outputs = {(s.checkpoint, s.id): s.output for s in samples}
    changes = tuple(
        _changes(checkpoints[0], checkpoint, sample_ids, evaluators, by_key, anchors, outputs)
        for checkpoint in checkpoints[1:]
        if checkpoints[0] is not None and checkpoint is not None
    )
    changed = {c.sample_id for cc in changes for c in (*cc.newly_fails, *cc.newly_passes)}
    return ReportData(
        run=run,
        checkpoints=checkpoints,
        cohorts=cohorts,
        evaluators=evaluators,
        judges=judges,
        counts=_counts(scores),
        errors_by_kind=dict(sorted(kinds.items())),
        errors=errors,
        aggregates=aggregates,
        overall=_table("all cohorts", evaluators, checkpoints, _overall(scores)),
        tables=tuple(
            _table(cohort, evaluators, checkpoints, [a for a in aggregates if a.cohort == cohort])
            for cohort in cohorts
        ),
        changes=changes,
        rows=_drill_rows(sample_ids, checkpoints, samples, by_key, anchors, changed),
        axes=axis_means(scores),
    )


def _checkpoint_order(
    run: RunRecord, scores: Sequence[StoredScore], samples: Sequence[StoredSample]
) -> tuple[str | None, ...]:
    """The run's checkpoints as configured (the runner records them in order), then any
    others found in the data, sorted; a plain eval's None comes first."""
    seen = {s.checkpoint for s in scores} | {s.checkpoint for s in samples}
    configured = run.config.get("checkpoints")
    ordered: list[str | None] = [None] if None in seen else []
    if isinstance(configured, list):
        ordered += [c for c in configured if isinstance(c, str) and c in seen]
    ordered += sorted(c for c in seen if c is not None and c not in ordered)
    return tuple(ordered) or (None,)


def _sample_order(
    scores: Sequence[StoredScore], samples: Sequence[StoredSample], cohorts: Sequence[str]
) -> list[str]:
    """Sample ids by cohort, then id."""
    cohort_of = {s.id: s.cohort for s in samples} | {s.sample_id: s.cohort for s in scores}
    rank = {cohort: n for n, cohort in enumerate(cohorts)}
    return sorted(cohort_of, key=lambda sample_id: (rank[cohort_of[sample_id]], sample_id))


def _counts(scores: Sequence[StoredScore]) -> Counts:
    return Counts(
        total=len(scores),
        ok=sum(s.status == "ok" for s in scores),
        error=sum(s.status == "error" for s in scores),
        skipped=sum(s.status == "skipped" for s in scores),
        failed=sum(s.status == "ok" and s.passed is False for s in scores),
    )


def _overall(scores: Iterable[StoredScore]) -> list[CohortAggregate]:
    """Aggregates over every cohort, by the same rules as :meth:`Store.aggregate`."""
    groups: dict[tuple[str | None, str], list[StoredScore]] = defaultdict(list)
    for score in scores:
        groups[(score.checkpoint, score.evaluator)].append(score)
    result = []
    for (checkpoint, evaluator), group in groups.items():
        ok = [s for s in group if s.status == "ok"]
        values = [s.value for s in ok if s.value is not None]
        verdicts = [s.passed for s in ok if s.passed is not None]
        failed = sum(not passed for passed in verdicts)
        result.append(
            CohortAggregate(
                checkpoint=checkpoint,
                cohort="all cohorts",
                evaluator=evaluator,
                n_ok=len(ok),
                n_error=sum(s.status == "error" for s in group),
                n_skipped=sum(s.status == "skipped" for s in group),
                n_failed=failed,
                mean=sum(values) / len(values) if values else None,
                fail_rate=failed / len(verdicts) if verdicts else None,
            )
        )
    return result


def _table(
    cohort: str,
    evaluators: Sequence[str],
    checkpoints: Sequence[str | None],
    aggregates: Iterable[CohortAggregate],
) -> CohortTable:
    found = {(a.evaluator, a.checkpoint): a for a in aggregates}
    rows = []
    for evaluator in evaluators:
        cells = [found.get((evaluator, checkpoint)) for checkpoint in checkpoints]
        if all(cell is None for cell in cells):
            continue
        means = [a.mean for a in cells if a is not None and a.mean is not None]
        # Highlight only when there is something to choose between.
        top = max(means) if len(means) > 1 and len(set(means)) > 1 else None
        rows.append(
            TableRow(
                evaluator=evaluator,
                cells=tuple(
                    Cell(a, best=top is not None and a is not None and a.mean == top) for a in cells
                ),
            )
        )
    return CohortTable(cohort=cohort, rows=tuple(rows))


def _verdict(score: StoredScore | None) -> bool | None:
    if score is None or score.status != "ok":
        return None
    return score.passed


def _changes(
    baseline: str,
    checkpoint: str,
    sample_ids: Sequence[str],
    evaluators: Sequence[str],
    by_key: Mapping[Key, Mapping[str, StoredScore]],
    anchors: Mapping[str, str],
    outputs: Mapping[Key, str | None],
) -> CheckpointChanges:
    fails: list[Change] = []
    passes: list[Change] = []
    compared = not_compared = 0
    for sample_id in sample_ids:
        before_scores = by_key.get((baseline, sample_id), {})
        after_scores = by_key.get((checkpoint, sample_id), {})
        for evaluator in evaluators:
            before, after = before_scores.get(evaluator), after_scores.get(evaluator)
            if before is None and after is None:
                continue  # the evaluator does not apply to this row
            was, now = _verdict(before), _verdict(after)
            if was is None or now is None or before is None or after is None:
                not_compared += 1
                continue
            compared += 1
            if was == now:
                continue
            change = Change(
                sample_id=sample_id,
                cohort=after.cohort,
                evaluator=evaluator,
                anchor=anchors[sample_id],
                before=before,
                after=after,
                output=outputs.get((checkpoint, sample_id)),
            )
            (fails if was else passes).append(change)
    return CheckpointChanges(
        checkpoint=checkpoint,
        baseline=baseline,
        newly_fails=tuple(fails),
        newly_passes=tuple(passes),
        compared=compared,
        not_compared=not_compared,
    )


def _drill_rows(
    sample_ids: Sequence[str],
    checkpoints: Sequence[str | None],
    samples: Sequence[StoredSample],
    by_key: Mapping[Key, Mapping[str, StoredScore]],
    anchors: Mapping[str, str],
    changed: set[str],
) -> tuple[DrillRow, ...]:
    stored = {(s.checkpoint, s.id): s for s in samples}
    rows = []
    for sample_id in sample_ids:
        copies = [stored.get((checkpoint, sample_id)) for checkpoint in checkpoints]
        prompt = next((copy for copy in copies if copy is not None), None)
        outputs = []
        for checkpoint, copy in zip(checkpoints, copies, strict=True):
            scores = by_key.get((checkpoint, sample_id), {})
            if copy is None and not scores:
                continue
            outputs.append(
                RowOutput(
                    checkpoint=checkpoint,
                    output=None if copy is None else copy.output,
                    scores=tuple(scores[name] for name in sorted(scores)),
                )
            )
        cohort = prompt.cohort if prompt is not None else outputs[0].scores[0].cohort
        rows.append(
            DrillRow(
                anchor=anchors[sample_id],
                sample_id=sample_id,
                cohort=cohort,
                sample=prompt,
                outputs=tuple(outputs),
                changed=sample_id in changed,
            )
        )
    return tuple(rows)


axis_scores = axis_results
"""The per-axis results of a score; see :func:`heldout.analysis.axis_results`."""


def axis_means(scores: Iterable[StoredScore]) -> dict[str, dict[str, dict[str | None, float]]]:
    """evaluator → axis → checkpoint → mean axis score, over ``ok`` scores only."""
    sums: dict[tuple[str, str, str | None], list[float]] = defaultdict(list)
    for score in scores:
        if score.status != "ok":
            continue
        for axis, entry in axis_scores(score).items():
            sums[(score.evaluator, axis, score.checkpoint)].append(entry["score"])
    means: dict[str, dict[str, dict[str | None, float]]] = {}
    for (evaluator, axis, checkpoint), values in sorted(
        sums.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or "")
    ):
        means.setdefault(evaluator, {}).setdefault(axis, {})[checkpoint] = sum(values) / len(values)
    return means
