"""Cohort rules: a YAML file that maps production traces to cohorts.

Example::

    seed: 7                      # of the sampling hash
    window: 7d                   # default rolling window of every cohort
    cohorts:
      - name: refunds
        match:                   # every condition must hold
          - field: input
            regex: "(?i)refund"
          - attribute: llm.model_name      # on any span of the trace
            in: [gpt-4o, gpt-4o-mini]
        sample_rate: 0.25        # a seeded hash of the trace id, stable across runs
        dedup: {similarity: 0.8} # near-identical inputs join once (true: 0.9)
        classify:                # a judge decides, after every cheap test passed
          question: Is the user asking for a refund?
          judge: openai:gpt-4o-mini
          threshold: 0.5         # P(Yes) at or above which the trace joins
        cap: 500                 # keep the newest 500
      - name: agent-runs
        match:
          - {attribute: openinference.span.kind, equals: AGENT}
        as: trajectory           # evaluate each trace as an agent trajectory
      - name: everything
        sample_rate: 0.01
    evaluators:                  # what `heldout serve --evaluate-every` runs
      - type: criteria
        criteria: The answer is correct and polite.

A trace joins a cohort when it has an input, every condition holds, its hash falls
under the sample rate, no member's input is near-identical to its own (unless
``dedup: false``) and, for a cohort with ``classify``, the classifier's verdict says
so. Members older than the window leave, and past the cap the oldest leave first.

The classifier runs last, so it only sees traces that passed every cheap test, and
asynchronously (:func:`~heldout.tracing.classify_traces`): until its verdict is in, a
trace is *awaiting* the judge; a judge error is recorded, counted, shown, and
retried at the next classification, never taken as a yes or a no.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from heldout._errors import ConfigError
from heldout.sweep import EvaluatorConfig, Scalar, _field, _line_of
from heldout.tracing._models import SpanRecord, TraceRecord

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
TraceField = Literal["input", "output", "context", "model", "service", "name", "session_id"]
TextField = Literal["input", "output", "context"]
SampleShape = Literal["trace", "trajectory"]
DEFAULT_SIMILARITY = 0.9
_INPUT_ONLY: list[TextField] = ["input"]


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """``"30s"``, ``"10m"``, ``"12h"``, ``"7d"`` or ``"2w"`` as a timedelta (bare numbers
    are seconds).

    Raises:
        ConfigError: The text is not a positive duration.
    """
    if isinstance(text, timedelta):
        seconds = text.total_seconds()
    elif isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise ConfigError(
                f"{text!r} is not a duration; write a number and a unit, e.g. 30s, 10m, 12h, 7d"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ConfigError(f"a duration must be positive, got {text!r}")
    return timedelta(seconds=seconds)


def _duration(value: Any) -> Any:
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from exc


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Condition(BaseModel):
    """One test on a trace: on a span attribute (true when any span passes) or a
    field of the trace. Give one of ``attribute`` / ``field`` and one operator."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    attribute: str | None = None
    """A span attribute, e.g. ``llm.model_name`` or ``user.tier``."""
    field: TraceField | None = None
    """A field of the trace: input, output, context, model, service, name, session_id."""
    equals: Scalar | None = None
    """The value equals this."""
    contains: str | None = None
    """The value, as text, contains this (case-sensitive)."""
    regex: str | None = None
    """The value, as text, matches this regular expression (``re.search``)."""
    one_of: list[Scalar] | None = Field(default=None, alias="in")
    """The value is one of these (written ``in:``)."""
    exists: bool | None = None
    """The value is present (true) or absent (false)."""

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _one_each(self) -> Condition:
        if (self.attribute is None) == (self.field is None):
            raise ValueError("give exactly one of attribute or field")
        ops = [self.equals, self.contains, self.regex, self.one_of, self.exists]
        if sum(op is not None for op in ops) != 1:
            raise ValueError("give exactly one of equals, contains, regex, in, exists")
        return self

    def holds(self, trace: TraceRecord, spans: Sequence[SpanRecord]) -> bool:
        """Whether the condition holds for ``trace`` (with its ``spans``)."""
        if self.field is not None:
            return self._test(getattr(trace, self.field))
        key = self.attribute or ""
        values = [s.attributes[key] for s in spans if key in s.attributes]
        if self.exists is not None:
            return bool(values) == self.exists
        return any(self._test(value) for value in values)

    def _test(self, value: Any) -> bool:
        if self.exists is not None:
            return (value is not None) == self.exists
        if value is None:
            return False
        if self.equals is not None:
            return bool(value == self.equals)
        if self.one_of is not None:
            return value in self.one_of
        text = value if isinstance(value, str) else str(value)
        if self.contains is not None:
            return self.contains in text
        return re.search(self.regex or "", text) is not None


class Dedup(BaseModel):
    """How near two inputs must be for the second to be left out of a cohort."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    similarity: float = Field(default=DEFAULT_SIMILARITY, gt=0.0, le=1.0)
    """The word-set Jaccard similarity of the normalised inputs at or above which a
    trace is a near-duplicate of a member (1.0: only inputs equal once normalised)."""


def _dedup(value: Any) -> Any:
    if value is True:
        return Dedup()
    if value is False:
        return None
    return value


class Classify(BaseModel):
    """A judge that classifies traces into a cohort: a Yes/No question, or an evaluator
    of the registry. Give one of ``question`` / ``evaluator``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str | None = Field(default=None, min_length=1)
    """A Yes/No question about the trace ("Is the user asking for a refund?"), read
    from the judge's first-token probabilities."""
    reads: list[TextField] = Field(default_factory=lambda: _INPUT_ONLY.copy(), min_length=1)
    """``question`` only: what of the trace the judge is shown (input, output, context)."""
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    """``question`` only: the P(Yes) at or above which the answer is yes (passes)."""
    evaluator: EvaluatorConfig | None = None
    """An evaluator of the registry (``{type: toxicity}``); its pass mark is its own
    ``threshold``."""
    join_on: Literal["pass", "fail"] = "pass"
    """Whether a trace joins when the classifier passes it (the question's answer is
    yes) or when it fails it (e.g. traces the toxicity evaluator fails)."""
    judge: str | None = None
    """The judge spec (default: the evaluation judge of ``heldout serve``)."""

    @model_validator(mode="after")
    def _one_kind(self) -> Classify:
        if (self.question is None) == (self.evaluator is None):
            raise ValueError("give exactly one of question or evaluator")
        if self.evaluator is not None and "threshold" in self.model_fields_set:
            raise ValueError(
                "an evaluator's pass mark is its own threshold: set evaluator.threshold"
            )
        if self.evaluator is not None and "reads" in self.model_fields_set:
            raise ValueError("reads is for a question; an evaluator reads what it needs")
        return self


class CohortRule(BaseModel):
    """Which traces make up one production cohort."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w.\- ]+$")
    """The cohort's name: letters, digits, ``_ . -`` and spaces."""
    match: list[Condition] = Field(default_factory=list)
    """Conditions that must all hold (none: every trace with an input)."""
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    """The share of matching traces kept, by a seeded hash of the trace id."""
    dedup: Annotated[Dedup | None, BeforeValidator(_dedup)] = Dedup()
    """Leave out a trace whose input is near-identical to a member's: ``true`` (at the
    default similarity), ``false``, or ``{similarity: 0.8}``."""
    classify: Classify | None = None
    """A judge that decides membership after every other test passed."""
    cap: int | None = Field(default=1000, ge=1)
    """The most members kept (the newest); None: no cap."""
    window: Duration | None = None
    """How long a trace stays a member (default: the file's ``window``)."""
    sample_as: SampleShape = Field(default="trace", alias="as")
    """What each member is when the cohort is evaluated (written ``as:``): ``trace``
    (its input, output and context) or ``trajectory`` (its agent, LLM and tool spans
    as a :class:`~heldout.data.Trajectory`, for the trajectory evaluators)."""

    def matches(self, trace: TraceRecord, spans: Sequence[SpanRecord]) -> bool:
        """Whether ``trace`` passes every condition (sampling aside)."""
        return trace.input is not None and all(c.holds(trace, spans) for c in self.match)

    def sampled(self, trace_id: str, seed: int) -> bool:
        """Whether the trace falls within the sample rate: stable for a seed."""
        if self.sample_rate >= 1.0:
            return True
        digest = hashlib.sha256(f"{seed}:{self.name}:{trace_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.sample_rate


class CohortRules(BaseModel):
    """A cohort rules file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    """The seed of every cohort's sampling hash."""
    window: Duration = timedelta(days=7)
    """The rolling window of cohorts that set none."""
    cohorts: list[CohortRule] = Field(default_factory=list)
    """The cohorts, each with its rule."""
    evaluators: list[EvaluatorConfig] = Field(default_factory=list)
    """The evaluators a scheduled evaluation runs on every cohort."""

    @model_validator(mode="after")
    def _unique_names(self) -> CohortRules:
        names = [c.name for c in self.cohorts]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"cohort names repeat: {', '.join(repeated)}")
        return self

    def window_of(self, rule: CohortRule) -> timedelta:
        """The rolling window of ``rule``'s cohort."""
        return rule.window or self.window

    def cohorts_of(self, trace: TraceRecord, spans: Sequence[SpanRecord]) -> list[str]:
        """The cohorts ``trace`` belongs to by match and sample (not dedup or window)."""
        return [
            rule.name
            for rule in self.cohorts
            if rule.matches(trace, spans) and rule.sampled(trace.trace_id, self.seed)
        ]


def load_cohort_rules(path: str | Path) -> CohortRules:
    """Read and validate a cohort rules file.

    Raises:
        ConfigError: The file is missing, is not YAML, or breaks the schema; the
            message names the file, the line and the field.
    """
    label = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read the cohort rules: {exc.strerror or exc}") from exc
    try:
        raw = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{label}{where}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}:1: cohort rules are a mapping (seed, window, cohorts, ...)")
    try:
        return CohortRules.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(
            f"{label}:{_line_of(root, loc)}: field {_field(loc) or '(top level)'}: {message}"
        ) from exc
