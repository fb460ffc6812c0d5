"""Training-judge verdicts: the preferences and scores the training judge produced.

Two shapes are read, from JSON lines, CSV or Parquet (by suffix):

- **Preferences**, DPO style: one row per pair, ``prompt``, ``chosen``, ``rejected``
  and optionally ``probability`` (the training judge's P(chosen is better)) and
  ``cohort``. The column names default to TRL's; :class:`PreferenceColumns` maps
  others. A prompt or answer may be a string or a TRL conversational list of
  ``{"role": ..., "content": ...}`` messages (rendered as ``role: content`` lines).
- **Verdicts**: one row per judged item, ``id`` and a ``score`` in [0, 1] and/or a
  ``label`` (``pass``/``fail`` or any category), optionally ``cohort``, ``axis``,
  ``checkpoint``, ``probability``, ``reason`` and ``error``.

Every bad row raises a :class:`~heldout.DataError` naming the file, the line (the
row number for Parquet) and the field; no row is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from heldout._errors import DataError
from heldout.data._loaders import StrPath, check_file, reader_for
from heldout.data._mapping import Row, lookup

PASS = "pass"
FAIL = "fail"
_LABEL_WORDS = {"pass": PASS, "fail": FAIL, "true": PASS, "false": FAIL}
_MAX_SHOWN = 40


class Preference(BaseModel):
    """One DPO-style pair the training judge ranked: ``chosen`` over ``rejected``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    """The pair's id: from the file, or ``pref-`` and a hash of the pair's text."""
    cohort: str = "default"
    """The held-out cohort the prompt belongs to."""
    prompt: str
    """The prompt both answers reply to."""
    chosen: str
    """The answer the training judge preferred."""
    rejected: str
    """The answer it ranked lower."""
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    """The training judge's P(chosen is better), when it gave one."""

    @property
    def label(self) -> str:
        """``chosen`` (P > 0.5 or no probability), ``rejected`` (P < 0.5) or ``tie``."""
        if self.probability is None or self.probability > 0.5:
            return "chosen"
        return "rejected" if self.probability < 0.5 else "tie"


class JudgeVerdict(BaseModel):
    """One judge's verdict on one item: a score, a label, or the error it hit.

    An item is identified by ``(checkpoint, id, axis)``. Only ``ok`` verdicts are
    compared or combined; ``error`` verdicts are counted next to every number.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    """The judged item's id (a sample id, or a preference pair's id)."""
    cohort: str = "default"
    """The held-out cohort of the item."""
    axis: str = "overall"
    """What was judged: an evaluator name or a constitutional axis."""
    checkpoint: str | None = None
    """The checkpoint whose output was judged, for regression evals."""
    judge: str = ""
    """Who gave the verdict (a judge spec, ``training``, a file name)."""
    status: Literal["ok", "error"] = "ok"
    """``ok`` when the judge gave a verdict, ``error`` when it failed."""
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    """The score in [0, 1], when the judge gave one."""
    label: str | None = None
    """The verdict as a category: ``pass``/``fail``, ``chosen``/``rejected``, ..."""
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    """The judge's probability of ``pass`` (or of ``chosen``), when it gave one."""
    reason: str = ""
    """The judge's reason, in its words."""
    error: str | None = None
    """For ``error`` verdicts: what went wrong."""

    @model_validator(mode="after")
    def _has_a_verdict(self) -> JudgeVerdict:
        if self.status == "ok" and self.score is None and self.label is None:
            raise ValueError("an ok verdict needs a score or a label")
        if self.status == "error" and (self.score is not None or self.label is not None):
            raise ValueError("an error verdict carries no score or label")
        return self

    @property
    def key(self) -> tuple[str | None, str, str]:
        """``(checkpoint, id, axis)``: what makes two judges' verdicts comparable."""
        return (self.checkpoint, self.id, self.axis)


class PreferenceColumns(BaseModel):
    """Which column holds each field of a :class:`Preference` (TRL names by default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default="id", min_length=1)
    """The pair's id; when the column is absent or empty the id is derived."""
    cohort: str = Field(default="cohort", min_length=1)
    """The cohort."""
    prompt: str = Field(default="prompt", min_length=1)
    """The prompt."""
    chosen: str = Field(default="chosen", min_length=1)
    """The preferred answer."""
    rejected: str = Field(default="rejected", min_length=1)
    """The other answer."""
    probability: str = Field(default="probability", min_length=1)
    """P(chosen is better), in [0, 1]."""


class VerdictColumns(BaseModel):
    """Which column holds each field of a :class:`JudgeVerdict`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default="id", min_length=1)
    """The item's id (required in every row)."""
    cohort: str = Field(default="cohort", min_length=1)
    """The cohort."""
    axis: str = Field(default="axis", min_length=1)
    """The axis or metric judged."""
    checkpoint: str = Field(default="checkpoint", min_length=1)
    """The checkpoint whose output was judged."""
    score: str = Field(default="score", min_length=1)
    """The score in [0, 1]."""
    label: str = Field(default="label", min_length=1)
    """The label: ``pass``/``fail`` (or ``true``/``false``), or any category."""
    probability: str = Field(default="probability", min_length=1)
    """The judge's probability of ``pass``."""
    reason: str = Field(default="reason", min_length=1)
    """The judge's reason."""
    error: str = Field(default="error", min_length=1)
    """An error message: a row with one is an ``error`` verdict."""


def pair_id(prompt: str, chosen: str, rejected: str) -> str:
    """The id of a preference pair without one: ``pref-`` and 16 hex digits of a sha256.

    The hash covers the pair's text (canonical JSON of ``[prompt, chosen, rejected]``),
    not its row number, so the id survives shuffling, filtering or re-exporting the
    file, and matches the id of the same pair judged by another judge.
    """
    canonical = json.dumps([prompt, chosen, rejected], ensure_ascii=False, separators=(",", ":"))
    return "pref-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def iter_preferences(
    path: StrPath, *, columns: PreferenceColumns | None = None, cohort: str | None = None
) -> Iterator[Preference]:
    """Stream the preference pairs of a JSON lines, CSV or Parquet file.

    Args:
        path: The file.
        columns: Which column holds which field (default: TRL's names).
        cohort: The cohort of rows that name none (default ``"default"``).

    Raises:
        DataError: The file cannot be read; a row lacks ``prompt``, ``chosen`` or
            ``rejected``; a value has the wrong type; a probability is not a number in
            [0, 1]; an id repeats (two rows with the same text and no id column
            repeat too: add ids); or the file holds no rows. The message names the
            file, line and field.
    """
    names = columns or PreferenceColumns()
    file, label = check_file(path)
    seen: dict[str, int] = {}
    for line, row in reader_for(file, label)(file, label):
        cells = _Cells(row, names.model_dump(), label, line)
        prompt = cells.text("prompt", required=True) or ""
        chosen = cells.text("chosen", required=True) or ""
        rejected = cells.text("rejected", required=True) or ""
        given = cells.identifier(required=False)
        item = Preference(
            id=given or pair_id(prompt, chosen, rejected),
            cohort=cells.text("cohort") or cohort or "default",
            prompt=prompt,
            chosen=chosen,
            rejected=rejected,
            probability=cells.unit_number("probability"),
        )
        _check_unique(seen, item.id, label, line, derived=given is None)
        yield item
    if not seen:
        raise DataError("file holds no rows; expected one preference pair per row", path=label)


def load_preferences(
    path: StrPath, *, columns: PreferenceColumns | None = None, cohort: str | None = None
) -> list[Preference]:
    """Read every preference pair of a file; see :func:`iter_preferences`."""
    return list(iter_preferences(path, columns=columns, cohort=cohort))


def iter_verdicts(
    path: StrPath,
    *,
    judge: str = "training",
    columns: VerdictColumns | None = None,
    axis: str = "overall",
    cohort: str | None = None,
    threshold: float = 0.5,
) -> Iterator[JudgeVerdict]:
    """Stream the per-row verdicts of a JSON lines, CSV or Parquet file.

    A row needs an ``id`` and a ``score`` or a ``label`` (or an ``error``). The label
    ``pass``/``fail`` (any case, or the booleans ``true``/``false``) is normalised to
    lower case; other labels are categories kept as written. A row with a score and
    no label gets ``pass`` when ``score >= threshold``, else ``fail``; a row with a
    ``pass``/``fail`` label and no score gets 1 or 0. Numbers may be written as
    strings (CSV).

    Args:
        path: The file.
        judge: The name the verdicts are filed under.
        columns: Which column holds which field (default: the field names).
        axis: The axis of rows that name none.
        cohort: The cohort of rows that name none (default ``"default"``).
        threshold: The pass mark that turns a score into a label.

    Raises:
        DataError: As for :func:`iter_preferences`; also a row with neither a score,
            a label nor an error, or a ``(checkpoint, id, axis)`` seen twice.
    """
    names = columns or VerdictColumns()
    file, label = check_file(path)
    seen: dict[str, int] = {}
    for line, row in reader_for(file, label)(file, label):
        cells = _Cells(row, names.model_dump(), label, line)
        verdict = _verdict(cells, judge=judge, axis=axis, cohort=cohort, threshold=threshold)
        _check_unique(seen, json.dumps(verdict.key), label, line, shown=verdict.id)
        yield verdict
    if not seen:
        raise DataError("file holds no rows; expected one verdict per row", path=label)


def load_verdicts(
    path: StrPath,
    *,
    judge: str = "training",
    columns: VerdictColumns | None = None,
    axis: str = "overall",
    cohort: str | None = None,
    threshold: float = 0.5,
) -> list[JudgeVerdict]:
    """Read every verdict of a file; see :func:`iter_verdicts`."""
    return list(
        iter_verdicts(
            path, judge=judge, columns=columns, axis=axis, cohort=cohort, threshold=threshold
        )
    )


def preference_verdicts(
    preferences: list[Preference] | Iterator[Preference],
    *,
    judge: str = "training",
    axis: str = "preference",
) -> list[JudgeVerdict]:
    """The training judge's preferences as verdicts, one per pair.

    The label is :attr:`Preference.label`; the score and the probability are the
    pair's probability (1 when the file gave none: the row says chosen won).
    """
    return [
        JudgeVerdict(
            id=p.id,
            cohort=p.cohort,
            axis=axis,
            judge=judge,
            score=1.0 if p.probability is None else p.probability,
            label=p.label,
            probability=p.probability,
        )
        for p in preferences
    ]


def _verdict(
    cells: _Cells, *, judge: str, axis: str, cohort: str | None, threshold: float
) -> JudgeVerdict:
    item_id = cells.identifier(required=True) or ""
    error = cells.text("error")
    score = cells.unit_number("score")
    raw_label = cells.label()
    common: dict[str, Any] = {
        "id": item_id,
        "cohort": cells.text("cohort") or cohort or "default",
        "axis": cells.text("axis") or axis,
        "checkpoint": cells.text("checkpoint"),
        "judge": judge,
        "reason": cells.text("reason") or "",
        "probability": cells.unit_number("probability"),
    }
    if error:
        if score is not None or raw_label is not None:
            raise cells.error("error", "a row with an error must have no score and no label")
        return JudgeVerdict(status="error", error=error, **common)
    if score is None and raw_label is None:
        raise cells.error(
            "score",
            f"row has no verdict: give a score in [0, 1] in column {cells.column('score')!r}, "
            f"a label in column {cells.column('label')!r}, or an error",
        )
    if raw_label is None and score is not None:
        raw_label = PASS if score >= threshold else FAIL
    if score is None and raw_label in (PASS, FAIL):
        score = 1.0 if raw_label == PASS else 0.0
    return JudgeVerdict(score=score, label=raw_label, **common)


def _check_unique(
    seen: dict[str, int],
    key: str,
    label: str,
    line: int,
    *,
    shown: str | None = None,
    derived: bool = False,
) -> None:
    first = seen.setdefault(key, line)
    if first == line:
        return
    what = shown if shown is not None else key
    hint = (
        "the same prompt, chosen and rejected text appears twice; add an id column"
        if derived
        else "ids must be unique (per checkpoint and axis)"
    )
    raise DataError(
        f"id {what!r} repeats: first on line {first}, again on line {line}; {hint}",
        path=label,
        line=line,
        field="id",
    )


class _Cells:
    """Reads the fields of one row by their mapped columns, with errors that say where."""

    def __init__(self, row: Row, columns: dict[str, str], path: str, line: int) -> None:
        self._row = row
        self._columns = columns
        self._path = path
        self._line = line

    def column(self, field: str) -> str:
        return self._columns[field]

    def error(self, field: str, message: str) -> DataError:
        return DataError(message, path=self._path, line=self._line, field=field)

    def _value(self, field: str) -> Any:
        value = lookup(self._row, self._columns[field])[1]
        return None if isinstance(value, str) and not value.strip() else value

    def _wrong(self, field: str, expected: str, value: Any) -> DataError:
        shown = repr(value)
        shown = shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 3] + "..."
        return self.error(
            field,
            f"{field} must be {expected}, got {type(value).__name__} {shown} "
            f"in column {self._columns[field]!r}",
        )

    def text(self, field: str, *, required: bool = False) -> str | None:
        value = self._value(field)
        if value is None:
            if required:
                present = ", ".join(repr(k) for k in list(self._row)[:12]) or "none"
                raise self.error(
                    field,
                    f"missing required field {field!r}: no value in column "
                    f"{self._columns[field]!r}; columns present: {present}. "
                    "Map the right column with the columns= argument.",
                )
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(_is_message(m) for m in value):
            return "\n".join(f"{m['role']}: {m['content']}" for m in value)
        raise self._wrong(field, "a string or a list of {role, content} messages", value)

    def identifier(self, *, required: bool) -> str | None:
        value = self._value("id")
        if value is None:
            if required:
                raise self.error(
                    "id",
                    f"missing required field 'id': no value in column {self._columns['id']!r}; "
                    "every verdict needs the id of the item it judges",
                )
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise self._wrong("id", "a string or an integer", value)
        return value.strip()

    def unit_number(self, field: str) -> float | None:
        value = self._value(field)
        if value is None:
            return None
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is None or not math.isfinite(number):
            raise self._wrong(field, "a number in [0, 1]", value)
        if not 0.0 <= number <= 1.0:
            raise self.error(
                field,
                f"{field} must lie in [0, 1], got {number:g} in column {self._columns[field]!r}",
            )
        return number

    def label(self) -> str | None:
        value = self._value("label")
        if value is None:
            return None
        if isinstance(value, bool):
            return PASS if value else FAIL
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise self._wrong("label", "a string (pass, fail or a category)", value)
        text = value.strip()
        return _LABEL_WORDS.get(text.lower(), text)


def _is_message(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("role"), str)
        and isinstance(value.get("content"), str)
    )
