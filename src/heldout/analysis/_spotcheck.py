"""Human spot-checks: draw items for people to label, then score each judge against them.

:func:`spotcheck_sample` draws a sample stratified by cohort, axis and the judges'
verdict pattern (``a=pass, b=fail`` is one stratum, ``a=pass, b=pass`` another), so
the rare items where judges disagree are drawn too. Each stratum gets its share of
the sample in proportion to its size, and at least one item while the sample has
room for every stratum; so small strata are slightly over-represented, and the
accuracies are of the sample, not re-weighted to the population.

The judges' verdicts are **hidden** in the exported file by default, so labelers
judge the output and are not anchored by what a judge said; ``show_verdicts=True``
adds one ``verdict:<judge>`` column per judge. Rows are exported in a shuffled order,
so strata do not show as blocks either.

:func:`spotcheck_score` reads the labelled file back (CSV or JSON lines), and
reports each judge's accuracy against people with Wilson intervals, overall and per
cohort. An empty ``human_label`` is an item not labelled yet, ``skip`` one the
labeler chose not to label; both are counted, neither is scored.

On a pairwise axis (a win rate: the output against the reference) a person writes a
preference, ``A`` (the output is better), ``B`` (the reference is) or ``tie``, and it
is compared with the judge's debiased preference: A above 0.5, B below, tie at 0.5.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from statistics import NormalDist
from typing import Any

from pydantic import BaseModel, ConfigDict

from heldout._errors import ConfigError, DataError
from heldout.analysis._agreement_report import label_of, verdict_table
from heldout.analysis._records import write_records
from heldout.analysis._table import ALL_COHORTS
from heldout.data import JudgeVerdict, Sample
from heldout.data._loaders import StrPath, check_file, reader_for
from heldout.data._mapping import Row

HUMAN_LABEL = "human_label"
"""The column people fill in."""
SKIP = "skip"
"""The label that says "I will not label this one"."""
PREFERENCES = ("A", "B", "tie")
"""A person's preference on a pairwise axis: the output (A), the reference (B), or neither."""
_EXACT = 1e-9  # float rounding around 0.5, as in PairwiseJudge
VERDICT_PREFIX = "verdict:"
_ALIASES = dict.fromkeys(("yes", "y", "true", "1"), "pass") | dict.fromkeys(
    ("no", "n", "false", "0"), "fail"
)
"""What people write for pass and fail, besides the words themselves."""
_Key = tuple[str | None, str, str]


class SpotCheckItem(BaseModel):
    """One item for a person to label."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_id: str
    """The sample's id."""
    checkpoint: str | None
    """The checkpoint whose output it is, if any."""
    cohort: str
    """The sample's cohort."""
    axis: str
    """What to judge: the evaluator or axis the judges judged."""
    input: str
    """The prompt."""
    output: str | None
    """The policy's answer."""
    verdicts: dict[str, str]
    """Each judge's label (``error`` or ``none`` without one); empty when hidden."""


class Stratum(BaseModel):
    """One stratum of the population and how many items were drawn from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """``cohort / axis / judge=label, ...``."""
    size: int
    """Items of the population in it."""
    drawn: int
    """Items drawn from it."""


class SpotCheckSample(BaseModel):
    """A stratified sample to label."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    judges: list[str]
    """The judges whose verdicts defined the strata."""
    items: list[SpotCheckItem]
    """The items, shuffled."""
    strata: list[Stratum]
    """Every stratum, sorted by name."""
    n_population: int
    """Items judged and with a sample (input and output) to show."""
    n_without_sample: int
    """Judged items left out because no sample text was given for them."""
    seed: int
    """The seed of the draw."""


class JudgeAccuracy(BaseModel):
    """How often one judge agreed with people, on one cohort or all (``"*"``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    judge: str
    """The judge."""
    cohort: str
    """The cohort, or ``"*"`` for all."""
    n: int
    """Labelled items this judge gave an ok verdict on."""
    n_correct: int
    """Of those, the items where its label equals the person's."""
    accuracy: float | None
    """``n_correct / n``; None when ``n`` is 0."""
    ci_low: float | None
    """Lower bound of the Wilson interval."""
    ci_high: float | None
    """Upper bound of the Wilson interval."""
    n_error: int
    """Labelled items this judge errored on or has no verdict on (not scored)."""


class SpotCheckReport(BaseModel):
    """Each judge's accuracy against people."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    judges: list[str]
    """The judges scored."""
    confidence: float
    """The confidence level of the intervals."""
    n_labelled: int
    """Rows with a label."""
    n_unlabelled: int
    """Rows with an empty label."""
    n_skipped: int
    """Rows labelled ``skip``."""
    rows: list[JudgeAccuracy]
    """Per judge: each cohort (sorted), then ``"*"``."""

    def accuracy(self, judge: str, cohort: str = ALL_COHORTS) -> JudgeAccuracy | None:
        """The row of ``judge`` on ``cohort`` (default: all cohorts), or None."""
        return next((r for r in self.rows if r.judge == judge and r.cohort == cohort), None)


def spotcheck_sample(
    verdicts: Mapping[str, Iterable[JudgeVerdict]],
    samples: Iterable[Sample],
    *,
    n: int,
    seed: int = 0,
    show_verdicts: bool = False,
) -> SpotCheckSample:
    """Draw ``n`` judged items for people to label, stratified by cohort and verdicts.

    Args:
        verdicts: Each judge's verdicts, by judge name (one judge is enough).
        samples: The samples the judges saw (:class:`~heldout.store.StoredSample`
            carries its checkpoint); items without one cannot be shown and are left
            out, counted in ``n_without_sample``.
        n: Items to draw (all of them when fewer exist).
        seed: The seed of the draw and of the shuffle.
        show_verdicts: Show each judge's label to the labelers (default hidden).

    Raises:
        ConfigError: ``n`` is below 1 or no judge is given.
        DataError: No judged item has a sample, or a judge has two verdicts on an item.
    """
    if n < 1:
        raise ConfigError(f"n must be at least 1; got {n}")
    table = verdict_table(verdicts)
    judges = list(table)
    if not judges:
        raise ConfigError("a spot-check needs the verdicts of at least one judge")
    texts = {(getattr(s, "checkpoint", None), s.id): s for s in samples}
    keys = list(dict.fromkeys(k for found in table.values() for k in found))
    shown = [k for k in keys if (k[0], k[1]) in texts]
    if not shown:
        raise DataError("no judged item has a sample to show; pass the samples the judges saw")
    strata: dict[str, list[_Key]] = {}
    for key in shown:
        strata.setdefault(_stratum(key, table, texts), []).append(key)
    names = sorted(strata)
    quota = _allocate([len(strata[s]) for s in names], min(n, len(shown)))
    rng = random.Random(seed)
    drawn: list[_Key] = []
    for name, k in zip(names, quota, strict=True):
        drawn.extend(rng.sample(sorted(strata[name], key=_order), k))
    rng.shuffle(drawn)
    items = [_item(key, table, texts, show_verdicts) for key in drawn]
    return SpotCheckSample(
        judges=judges,
        items=items,
        strata=[
            Stratum(name=s, size=len(strata[s]), drawn=k) for s, k in zip(names, quota, strict=True)
        ],
        n_population=len(shown),
        n_without_sample=len(keys) - len(shown),
        seed=seed,
    )


def write_spotcheck(sample: SpotCheckSample, path: StrPath) -> Path:
    """Write the items to label as CSV or JSON lines (by suffix), with an empty
    ``human_label`` column (and an empty ``notes`` column for the labeler).

    Model text is written as it is. A spreadsheet may read a cell that starts with
    ``=``, ``+``, ``-`` or ``@`` as a formula: import the CSV as text, or use JSON lines.

    Raises:
        ConfigError: The suffix is neither ``.csv`` nor ``.jsonl``.
        DataError: The file cannot be written.
    """
    shown = sorted({j for item in sample.items for j in item.verdicts})
    records = [
        {
            "sample_id": item.sample_id,
            "checkpoint": item.checkpoint,
            "cohort": item.cohort,
            "axis": item.axis,
            "input": item.input,
            "output": item.output,
            **{f"{VERDICT_PREFIX}{j}": item.verdicts.get(j) for j in shown},
            HUMAN_LABEL: None,
            "notes": None,
        }
        for item in sample.items
    ]
    return write_records(records, path, what="the spot-check", empty=["sample_id", HUMAN_LABEL])


def spotcheck_score(
    labels: StrPath,
    verdicts: Mapping[str, Iterable[JudgeVerdict]],
    *,
    confidence: float = 0.95,
) -> SpotCheckReport:
    """Each judge's accuracy against the labels people wrote in a spot-check file.

    A person's label is compared with the judge's label (``pass``/``fail``, or the
    judge's categories). ``yes``/``no``, ``true``/``false`` and ``1``/``0`` are read as
    ``pass``/``fail``; case does not matter.

    Args:
        labels: The file :func:`write_spotcheck` wrote, with ``human_label`` filled in.
        verdicts: The judges' verdicts, by judge name: the same judges (or more) as
            the sample was drawn with.
        confidence: The confidence level of the Wilson intervals.

    Raises:
        ConfigError: ``confidence`` is out of range.
        DataError: The file cannot be read; a row lacks ``sample_id`` or ``axis``;
            a label is not one the judges use; an item repeats or no judge judged it.
            The message names the file, line and field.
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must lie strictly between 0 and 1; got {confidence}")
    table = verdict_table(verdicts)
    known = {k for found in table.values() for k in found}
    allowed = {"pass", "fail"} | {
        label_of(v) for found in table.values() for v in found.values() if v.status == "ok"
    }
    labelled: dict[_Key, tuple[str, str]] = {}  # key -> (cohort, label)
    seen: set[_Key] = set()
    unlabelled = skipped = 0
    file, name = check_file(labels)
    for line, row in reader_for(file, name)(file, name):
        key, cohort, label = _read_row(row, name, line, allowed)
        if key not in known:
            raise DataError(
                f"item {key[1]!r} (axis {key[2]!r}, checkpoint {key[0]!r}) was judged by "
                "none of the judges given; score with the runs the sample was drawn from",
                path=name,
                line=line,
                field="sample_id",
            )
        if key in seen:
            raise DataError(
                f"item {key[1]!r} (axis {key[2]!r}) repeats; label each item once",
                path=name,
                line=line,
                field="sample_id",
            )
        seen.add(key)
        if label is None:
            unlabelled += 1
        elif label == SKIP:
            skipped += 1
        else:
            labelled[key] = (cohort, label)
    if not seen:
        raise DataError("file holds no rows; expected the items of a spot-check", path=name)
    rows = [
        _accuracy(judge, cohort, labelled, table[judge], confidence)
        for judge in table
        for cohort in [*sorted({c for c, _ in labelled.values()}), ALL_COHORTS]
    ]
    return SpotCheckReport(
        judges=list(table),
        confidence=confidence,
        n_labelled=len(labelled),
        n_unlabelled=unlabelled,
        n_skipped=skipped,
        rows=rows,
    )


def preference_of(verdict: JudgeVerdict) -> str:
    """The judge's preference on a pairwise item: its label when that is A, B or tie,
    else from its score, the probability that the output (A) is better."""
    if verdict.label in PREFERENCES:
        return verdict.label
    score = verdict.score if verdict.score is not None else 0.5
    if abs(score - 0.5) <= _EXACT:
        return "tie"
    return "A" if score > 0.5 else "B"


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n`` (``n`` >= 1)."""
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At 0 or n successes one bound is exactly 0 or 1; say so rather than round off.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


# -- helpers -------------------------------------------------------------------------


def _order(key: _Key) -> tuple[str, str, str]:
    return (key[0] or "", key[1], key[2])


def _verdict_word(v: JudgeVerdict | None) -> str:
    if v is None:
        return "none"
    return "error" if v.status == "error" else label_of(v)


def _stratum(
    key: _Key, table: dict[str, dict[_Key, JudgeVerdict]], texts: Mapping[Any, Sample]
) -> str:
    cohort = texts[(key[0], key[1])].cohort
    pattern = ", ".join(f"{j}={_verdict_word(found.get(key))}" for j, found in table.items())
    return f"{cohort} / {key[2]} / {pattern}"


def _allocate(sizes: list[int], n: int) -> list[int]:
    """Proportional quotas summing to ``n``, at least 1 per stratum when n allows."""
    total = sum(sizes)
    ideal = [n * size / total for size in sizes]
    floor = 1 if n >= len(sizes) else 0
    quota = [min(size, max(floor, math.floor(q))) for size, q in zip(sizes, ideal, strict=True)]
    while sum(quota) > n:  # the minimum of 1 overshot: take from the most over-served
        i = max(
            (i for i in range(len(quota)) if quota[i] > floor), key=lambda i: quota[i] - ideal[i]
        )
        quota[i] -= 1
    while sum(quota) < n:  # largest remainder first
        i = max(
            (i for i in range(len(quota)) if quota[i] < sizes[i]), key=lambda i: ideal[i] - quota[i]
        )
        quota[i] += 1
    return quota


def _item(
    key: _Key,
    table: dict[str, dict[_Key, JudgeVerdict]],
    texts: Mapping[Any, Sample],
    show: bool,
) -> SpotCheckItem:
    sample = texts[(key[0], key[1])]
    return SpotCheckItem(
        sample_id=key[1],
        checkpoint=key[0],
        cohort=sample.cohort,
        axis=key[2],
        input=sample.input,
        output=sample.output,
        verdicts={j: _verdict_word(found.get(key)) for j, found in table.items()} if show else {},
    )


def _read_row(row: Row, path: str, line: int, allowed: set[str]) -> tuple[_Key, str, str | None]:
    def text(field: str, *, required: bool) -> str | None:
        value = row.get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise DataError(
                    f"missing {field!r}; keep the columns the spot-check file was written with",
                    path=path,
                    line=line,
                    field=field,
                )
            return None
        if not isinstance(value, str):
            raise DataError(
                f"{field} must be a string, got {type(value).__name__}",
                path=path,
                line=line,
                field=field,
            )
        return value.strip()

    sample_id = text("sample_id", required=True) or ""
    axis = text("axis", required=True) or ""
    key = (text("checkpoint", required=False), sample_id, axis)
    cohort = text("cohort", required=False) or "default"
    raw = text(HUMAN_LABEL, required=False)
    if raw is None:
        return key, cohort, None
    lowered = raw.lower()
    if lowered == SKIP:
        return key, cohort, SKIP
    preference = {p.lower(): p for p in PREFERENCES}.get(lowered)
    if preference is not None:
        return key, cohort, preference
    canonical = {label.lower(): label for label in allowed}
    label = canonical.get(_ALIASES.get(lowered, lowered))
    if label is None:
        raise DataError(
            f"label {raw!r} is not one the judges use; write one of "
            f"{', '.join(sorted(allowed))} (or yes/no), A/B/tie on a pairwise axis, "
            f"or {SKIP!r}",
            path=path,
            line=line,
            field=HUMAN_LABEL,
        )
    return key, cohort, label


def _accuracy(
    judge: str,
    cohort: str,
    labelled: dict[_Key, tuple[str, str]],
    found: dict[_Key, JudgeVerdict],
    confidence: float,
) -> JudgeAccuracy:
    n = correct = errors = 0
    for key, (item_cohort, human) in labelled.items():
        if cohort != ALL_COHORTS and item_cohort != cohort:
            continue
        v = found.get(key)
        if v is None or v.status != "ok":
            errors += 1
            continue
        n += 1
        correct += (preference_of(v) if human in PREFERENCES else label_of(v)) == human
    low, high = wilson_interval(correct, n, confidence) if n else (None, None)
    return JudgeAccuracy(
        judge=judge,
        cohort=cohort,
        n=n,
        n_correct=correct,
        accuracy=correct / n if n else None,
        ci_low=low,
        ci_high=high,
        n_error=errors,
    )
