"""A jury: several judges' verdicts on the same items combined into one, with how far
the jurors agree.

The jury is an analysis of verdicts, not an :class:`~heldout.evaluators.Evaluator`.
Each juror is judged by the runner as any evaluator is (one evaluator per juror in
one run, e.g. ``Criteria(c, name="criteria@a", judge=A)``, or one run per judge), so
every juror's calls are cached, resumable, counted and their clients closed by the
runner; :func:`jury` then combines the stored verdicts. An evaluator calling several
judges itself would own clients the runner cannot see or close, and a crash would
lose the verdicts of the jurors that had answered.

Methods:

- ``majority``: the most common label among the jurors who answered; a tie between
  the top labels gives the label ``tie``. With pass/fail labels the score is the
  share of ``pass`` votes.
- ``mean``: the mean score of the jurors who answered; ``pass`` at ``threshold``.
- ``probability``: the mean of the jurors' probabilities (P(pass), e.g. P(Yes) of a
  probability-method evaluator); ``pass`` at ``threshold``.

A juror that errored (or has no verdict on the item) is left out of the combination
and listed in ``errors``; it is never counted as a 0. Fewer answering jurors than
``quorum`` make the jury's verdict an error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from heldout._errors import ConfigError, DataError
from heldout.analysis._agreement import AGREEMENT_RESAMPLES, Level
from heldout.analysis._agreement_report import (
    AgreementReport,
    judge_agreement,
    label_of,
    verdict_table,
)
from heldout.data import JudgeVerdict

JuryMethod = Literal["majority", "mean", "probability"]
JURY_METHODS: tuple[JuryMethod, ...] = ("majority", "mean", "probability")


class JuryVerdict(BaseModel):
    """The jury's verdict on one item, and each juror's vote."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    """The item's id."""
    cohort: str
    """Its cohort (as the first juror that has it gives)."""
    axis: str
    """The axis judged."""
    checkpoint: str | None
    """The checkpoint whose output was judged, if any."""
    status: Literal["ok", "error"]
    """``ok`` when at least ``quorum`` jurors answered, else ``error``."""
    score: float | None
    """The combined score: share of pass votes (majority), mean score or mean
    probability; None for an error, or a majority over labels other than pass/fail."""
    label: str | None
    """The combined label; ``tie`` when a majority vote is tied; None for an error."""
    votes: dict[str, str]
    """The label of each juror who answered."""
    errors: dict[str, str]
    """Each juror who did not answer, and why (its error, or ``no verdict``)."""
    reason: str
    """How the verdict came about, in words."""


class JuryResult(BaseModel):
    """The jury's verdict on every item, and the agreement between its jurors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: JuryMethod
    """How the verdicts were combined."""
    jurors: list[str]
    """The jurors, in the order given."""
    quorum: int
    """Jurors that must answer for an ok verdict."""
    threshold: float
    """The pass mark of ``mean`` and ``probability``."""
    verdicts: list[JuryVerdict]
    """One per item, ordered by axis, cohort, checkpoint and id."""
    agreement: AgreementReport
    """The jurors' agreement: kappa per pair, and alpha with more than two jurors."""

    def as_verdicts(self, judge: str = "jury") -> list[JudgeVerdict]:
        """The jury's verdicts as one more judge's, to compare with others."""
        return [
            JudgeVerdict(
                id=v.id,
                cohort=v.cohort,
                axis=v.axis,
                checkpoint=v.checkpoint,
                judge=judge,
                status=v.status,
                score=v.score,
                label=v.label,
                reason=v.reason,
                error=v.reason if v.status == "error" else None,
            )
            for v in self.verdicts
        ]


def jury(
    verdicts: Mapping[str, Iterable[JudgeVerdict]],
    *,
    method: JuryMethod = "majority",
    quorum: int | None = None,
    threshold: float = 0.5,
    level: Level = "nominal",
    confidence: float = 0.95,
    n_resamples: int = AGREEMENT_RESAMPLES,
    seed: int = 0,
) -> JuryResult:
    """Combine several jurors' verdicts on the same items.

    Args:
        verdicts: Each juror's verdicts, by juror name (two or more jurors).
        method: ``majority``, ``mean`` or ``probability``; see the module docstring.
        quorum: Jurors that must answer for an ok verdict; default more than half.
        threshold: The pass mark of ``mean`` and ``probability``.
        level: The scale of the jurors' alpha (see :func:`judge_agreement`).
        confidence: The confidence level of the agreement intervals.
        n_resamples: Bootstrap resamples per agreement interval.
        seed: The resampling seed.

    Raises:
        ConfigError: Fewer than two jurors, an unknown method or a quorum out of range.
        DataError: A juror has two verdicts on one item; or an answering juror gave no
            score (``mean``) or no probability (``probability``).
    """
    if method not in JURY_METHODS:
        raise ConfigError(f"Unknown jury method {method!r}. Available: {', '.join(JURY_METHODS)}")
    # Materialise once: the verdicts are read for the combination and for the agreement.
    given = {name: list(items) for name, items in verdicts.items()}
    table = verdict_table(given)
    jurors = list(table)
    if len(jurors) < 2:
        raise ConfigError(f"a jury needs two or more jurors; got {jurors or 'none'}")
    need = quorum if quorum is not None else len(jurors) // 2 + 1
    if not 1 <= need <= len(jurors):
        raise ConfigError(f"quorum must lie between 1 and {len(jurors)} jurors; got {need}")
    keys = list(dict.fromkeys(k for found in table.values() for k in found))
    combined = [_combine(key, table, method, need, threshold) for key in keys]
    combined.sort(key=lambda v: (v.axis, v.cohort, v.checkpoint or "", v.id))
    agreement = judge_agreement(
        given, level=level, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    return JuryResult(
        method=method,
        jurors=jurors,
        quorum=need,
        threshold=threshold,
        verdicts=combined,
        agreement=agreement,
    )


def _combine(
    key: tuple[str | None, str, str],
    table: dict[str, dict[tuple[str | None, str, str], JudgeVerdict]],
    method: JuryMethod,
    quorum: int,
    threshold: float,
) -> JuryVerdict:
    present = [found[key] for found in table.values() if key in found]
    answered: dict[str, JudgeVerdict] = {}
    errors: dict[str, str] = {}
    for juror, found in table.items():
        v = found.get(key)
        if v is None:
            errors[juror] = "no verdict"
        elif v.status == "error":
            errors[juror] = v.error or "error"
        else:
            answered[juror] = v
    votes = {j: label_of(v) for j, v in answered.items()}
    score: float | None
    if len(answered) < quorum:
        status: Literal["ok", "error"] = "error"
        score, label = None, None
        reason = (
            f"{len(answered)} of {len(table)} jurors answered, fewer than the quorum of "
            f"{quorum}: " + "; ".join(f"{j}: {e}" for j, e in errors.items())
        )
    else:
        status = "ok"
        if method == "majority":
            score, label, how = _majority(votes)
        else:
            score = _mean(answered, method, key)
            label = "pass" if score >= threshold else "fail"
            how = f"mean {'score' if method == 'mean' else 'probability'} {score:.3f}"
        left_out = f"; left out: {', '.join(errors)}" if errors else ""
        reason = f"{len(answered)} of {len(table)} jurors: {how}{left_out}"
    return JuryVerdict(
        id=key[1],
        cohort=present[0].cohort,
        axis=key[2],
        checkpoint=key[0],
        status=status,
        score=score,
        label=label,
        votes=votes,
        errors=errors,
        reason=reason,
    )


def _majority(votes: dict[str, str]) -> tuple[float | None, str, str]:
    counts = Counter(votes.values()).most_common()
    top = counts[0][1]
    leaders = sorted(label for label, n in counts if n == top)
    label = leaders[0] if len(leaders) == 1 else "tie"
    score = None
    if set(votes.values()) <= {"pass", "fail"}:
        score = sum(1 for v in votes.values() if v == "pass") / len(votes)
    shown = ", ".join(f"{name} {n}" for name, n in counts)
    return score, label, f"votes {shown}"


def _mean(
    answered: dict[str, JudgeVerdict], method: JuryMethod, key: tuple[str | None, str, str]
) -> float:
    values = []
    for juror, v in answered.items():
        value = v.score if method == "mean" else v.probability
        if value is None:
            what = "score" if method == "mean" else "probability"
            hint = "use method='majority'" if method == "mean" else "use method='mean'"
            raise DataError(
                f"juror {juror!r} gave item {key[1]!r} (axis {key[2]!r}) no {what}; {hint}",
                field=what,
            )
        values.append(value)
    return sum(values) / len(values)
