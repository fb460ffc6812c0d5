"""The sweep file: what a RegressionEval compares, read from YAML and validated.

A sweep names the held-out dataset and its cohorts, the evaluators, the eval judge
(and the training judge it must stay apart from), the baseline, and the checkpoints
with their hyperparameters. Paths are relative to the sweep file. Example::

    name: dpo-beta-sweep
    dataset: {path: heldout.jsonl, cohorts: [helpfulness, harmlessness, regression]}
    eval_judge: openai:gpt-4o-mini
    training_judge: openai:gpt-4o
    evaluators:
      - {type: task_completion, cohorts: [helpfulness, regression]}
      - {type: custom, constitution: default}
    baseline: sft
    sampling: {max_tokens: 512, temperature: 0}
    checkpoints:
      - {name: sft, outputs: outputs/sft.jsonl}
      - {name: beta-0.1, endpoint: "openai:policy@http://localhost:8001/v1",
         params: {beta: 0.1, step: 1000}}
      - {name: beta-0.3, gguf: ckpt/beta-0.3.Q4_K_M.gguf, params: {beta: 0.3}}
      - name: beta-0.5                  # served by two replicas: generation is balanced
        endpoint: ["openai:policy-b05@http://gpu-1:8000/v1",
                   "openai:policy-b05@http://gpu-2:8000/v1"]
    selection:
      objective: {metrics: ["custom:*"], cohorts: [helpfulness, harmlessness, honesty]}
      guards: [{metric: task_completion, cohorts: [helpfulness, regression], max_drop: 0.02}]
    overfitting: {}            # judge the outputs again with the training judge, flag
                               # checkpoints that rise only under it

Errors name the file, the line and the field.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from heldout._errors import ConfigError
from heldout.analysis import Correction, Guard, Objective, TestMethod
from heldout.data import ColumnMapping
from heldout.judges import JudgeSpec
from heldout.runner._generate import Sampling


def _scalar(value: Any) -> Any:
    # Checked before the union, so a bad value gets one error at its own key instead
    # of one per union member (``params.beta.str``, ``params.beta.int``, ...).
    if not isinstance(value, str | int | float | bool):
        raise ValueError(f"expected a string, number or boolean, got {type(value).__name__}")
    return value


Scalar = Annotated[str | int | float | bool, BeforeValidator(_scalar)]

_FIELD = "sweep_field"
"""The context key of a model-wide check's error that names the field it is about."""


def _error_at(loc: tuple[str | int, ...], message: str) -> PydanticCustomError:
    """An error of a check across fields, naming the field to blame (for its line)."""
    return PydanticCustomError("sweep", "{message}", {"message": message, _FIELD: loc})


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetConfig(_Model):
    """The held-out prompts."""

    path: Path
    """A JSONL, CSV or Parquet file of prompts (relative to the sweep file)."""
    cohorts: list[str] | None = None
    """Only these cohorts (default: every cohort in the file)."""
    cohort: str | None = None
    """The cohort of rows that name none."""
    mapping: ColumnMapping | None = None
    """Which column holds which field (default: the Sample field names)."""


class EvaluatorConfig(_Model):
    """One evaluator, by its registered name."""

    type: str
    """The evaluator: task_completion, groundedness, content_safety, toxicity, refusal,
    custom, criteria, hallucination."""
    cohorts: list[str] | None = None
    """The cohorts it judges (default: every cohort)."""
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    """The pass threshold (default: the evaluator's own)."""
    judge: str | None = None
    """This evaluator's judge spec (default: the sweep's eval judge)."""
    constitution: str | None = None
    """``custom`` only: a constitution YAML file or a shipped name (default: default)."""
    axes: list[str] | None = None
    """``custom`` only: grade these axes of the constitution (default: all)."""
    criteria: str | None = None
    """``criteria`` only: the criterion each output is judged against."""
    options: dict[str, Scalar] = Field(default_factory=dict)
    """Further keyword arguments of the evaluator's constructor."""


class CheckpointConfig(_Model):
    """One checkpoint and where its outputs come from: exactly one source."""

    name: str = Field(min_length=1)
    """The checkpoint's name, unique in the sweep."""
    outputs: Path | None = None
    """Precomputed outputs: rows of ``{"id": ..., "output": ...}`` (JSONL, CSV, Parquet)."""
    endpoint: str | list[str] | None = None
    """A policy served behind an OpenAI-compatible endpoint, as a spec:
    ``openai:MODEL@http://host:port/v1``; or a list of specs of its replicas (the same
    model behind several base URLs), over which generation is balanced."""
    gguf: Path | None = None
    """A local GGUF file of the checkpoint, run with llama.cpp."""
    sampling: Sampling | None = None
    """How this checkpoint samples (default: the sweep's ``sampling``)."""
    params: dict[str, Scalar] = Field(default_factory=dict)
    """Hyperparameters as free metadata (beta, learning_rate, step, ...), for charts."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [k for k in ("outputs", "endpoint", "gguf") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"checkpoint {self.name!r} needs exactly one of outputs, endpoint or gguf "
                f"(got {', '.join(given) or 'none'})"
            )
        if isinstance(self.endpoint, list):
            _check_replicas(self.name, self.endpoint)
        return self

    @property
    def policy(self) -> str | None:
        """The spec of the model that generates this checkpoint's outputs, if any (the
        first replica's, when it has several)."""
        replicas = self.replicas
        return replicas[0] if replicas else None

    @property
    def replicas(self) -> list[str]:
        """The specs of every endpoint (replica) serving this checkpoint; empty when its
        outputs come from a file."""
        if isinstance(self.endpoint, list):
            return list(self.endpoint)
        if self.endpoint is not None:
            return [self.endpoint]
        return [] if self.gguf is None else [f"local:{self.gguf}"]


class SelectionConfig(_Model):
    """How the checkpoint to ship is chosen."""

    objective: Objective
    """The alignment objective to maximise."""
    guards: list[Guard] = Field(default_factory=list)
    """Capability regressions that disqualify a checkpoint."""
    max_error_rate: float = Field(default=0.1, ge=0.0, le=1.0)
    """A checkpoint with more judge errors than this share cannot be judged fairly."""


class StatisticsConfig(_Model):
    """Confidence intervals and tests."""

    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    """The confidence level of every interval."""
    test: TestMethod = "permutation"
    """The paired test of a delta against the baseline."""
    correction: Correction = "holm"
    """Multiple-comparison control across the table: Holm or Benjamini-Hochberg."""
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    """The significance level after correction."""
    n_resamples: int = Field(default=9999, ge=99)
    """Bootstrap and permutation resamples."""
    seed: int = 0
    """The seed of every resampling: the same scores give the same table."""


class OverfittingConfig(_Model):
    """The judge-overfitting flag: the training judge's view of the same checkpoints.

    A checkpoint is flagged when its score rises significantly under the training
    judge but not under the eval judge (see :func:`heldout.analysis.judge_overfitting`).
    """

    verdicts: Path | None = None
    """The training judge's per-checkpoint verdicts (JSON lines, CSV or Parquet with
    ``checkpoint``, ``id``, ``axis`` and ``score`` columns); default: judge the sweep
    again with the training judge, on the same outputs."""
    metrics: dict[str, str] | None = None
    """Training-judge metric -> eval metric, where the two are named differently;
    default: the metrics both tables share."""


class SweepConfig(_Model):
    """A regression sweep: checkpoints against a baseline on held-out cohorts."""

    name: str = Field(min_length=1)
    """The sweep's name; its run id derives from it and from what it compares."""
    dataset: DatasetConfig
    """The held-out prompts."""
    evaluators: list[EvaluatorConfig] = Field(min_length=1)
    """The evaluators, each on its cohorts."""
    baseline: str
    """The name of the pre-RLAIF checkpoint every other is compared with."""
    checkpoints: list[CheckpointConfig] = Field(min_length=2)
    """The baseline and the checkpoints, in sweep order."""
    eval_judge: str | None = None
    """The eval judge spec (default: the configured eval judge)."""
    training_judge: str | None = None
    """The judge that produced the training preferences; the eval judge must differ."""
    training_labels: Path | None = None
    """A labels file written by ``heldout label``: its recorded labeler is the training
    judge, unless ``training_judge`` is given."""
    allow_training_judge: bool = False
    """Go on although the eval judge is the training judge (not recommended)."""
    overfitting: OverfittingConfig | None = None
    """Flag checkpoints that look better only to the training judge (default: off)."""
    sampling: Sampling = Field(default_factory=Sampling)
    """How generated checkpoints sample, unless a checkpoint says otherwise."""
    selection: SelectionConfig | None = None
    """How to choose the checkpoint to ship (default: no selection)."""
    statistics: StatisticsConfig = Field(default_factory=StatisticsConfig)
    """Intervals, tests and their correction."""
    workers: int = Field(default=64, ge=1)
    """The most rows in progress at once."""

    @model_validator(mode="after")
    def _checkpoints(self) -> Self:
        names = [c.name for c in self.checkpoints]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise _error_at(
                    ("checkpoints", index, "name"),
                    f"checkpoint names must be unique; {name!r} is also "
                    f"checkpoints[{names.index(name)}]",
                )
        if self.baseline not in names:
            raise _error_at(
                ("baseline",),
                f"baseline {self.baseline!r} is not a checkpoint. Available: {', '.join(names)}",
            )
        return self

    def sampling_of(self, checkpoint: CheckpointConfig) -> Sampling:
        """The sampling parameters of ``checkpoint``."""
        return checkpoint.sampling or self.sampling

    def resolve(self, folder: Path) -> SweepConfig:
        """A copy with every relative path made relative to ``folder``."""

        def at(path: Path | None) -> Path | None:
            return None if path is None or path.is_absolute() else folder / path

        dataset = self.dataset.model_copy(
            update={"path": at(self.dataset.path) or self.dataset.path}
        )
        checkpoints = [
            c.model_copy(
                update={"outputs": at(c.outputs) or c.outputs, "gguf": at(c.gguf) or c.gguf}
            )
            for c in self.checkpoints
        ]
        evaluators = [
            e.model_copy(update={"constitution": _constitution_path(e.constitution, folder)})
            for e in self.evaluators
        ]
        overfitting = self.overfitting
        if overfitting is not None and overfitting.verdicts is not None:
            overfitting = overfitting.model_copy(
                update={"verdicts": at(overfitting.verdicts) or overfitting.verdicts}
            )
        return self.model_copy(
            update={
                "overfitting": overfitting,
                "dataset": dataset,
                "checkpoints": checkpoints,
                "evaluators": evaluators,
                "training_labels": at(self.training_labels) or self.training_labels,
            }
        )

    def digest(self) -> str:
        """A short hash of the whole configuration."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _check_replicas(name: str, specs: list[str]) -> None:
    """Replicas are one model: one provider and model name, each at its own base URL."""
    if not specs:
        raise ValueError(f"checkpoint {name!r}: endpoint lists no replica")
    parsed = []
    for spec in specs:
        try:
            parsed.append(JudgeSpec.parse(spec))
        except ConfigError as exc:
            raise ValueError(f"checkpoint {name!r}: {exc}") from exc
    models = {(p.provider, p.model) for p in parsed}
    if len(models) > 1:
        served = ", ".join(sorted(f"{p}:{m}" for p, m in models))
        raise ValueError(f"checkpoint {name!r}: replicas must serve one model, not {served}")
    urls = [p.base_url for p in parsed]
    if None in urls or len(set(urls)) != len(urls):
        raise ValueError(
            f"checkpoint {name!r}: each replica needs a base URL of its own (MODEL@http://...)"
        )


def _constitution_path(value: str | None, folder: Path) -> str | None:
    # A shipped name ("default") stays a name; a file path is resolved.
    if value is None or not value.endswith((".yaml", ".yml")) or Path(value).is_absolute():
        return value
    return str(folder / value)


def load_sweep(path: str | Path) -> SweepConfig:
    """Read and validate a sweep file; relative paths resolve against its folder.

    Raises:
        ConfigError: The file is missing, is not YAML, or breaks the schema; the
            message names the file, the line and the field.
    """
    file = Path(path)
    label = str(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read the sweep file: {exc.strerror or exc}") from exc
    try:
        raw = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{label}{where}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}:1: a sweep file is a mapping (name, dataset, evaluators, ...)")
    try:
        config = SweepConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = (*first["loc"], *first.get("ctx", {}).get(_FIELD, ()))
        field = _field(loc) or "(top level)"
        line = _line_of(root, loc)
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{label}:{line}: field {field}: {message}") from exc
    return config.resolve(file.parent)


def _field(loc: tuple[Any, ...]) -> str:
    """``("checkpoints", 1, "params")`` as ``checkpoints[1].params``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the deepest node of ``loc`` found in the YAML tree."""
    node = root
    line = 1 if node is None else node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next(
                (value for key, value in node.value if getattr(key, "value", None) == part), None
            )
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


__all__ = [
    "CheckpointConfig",
    "DatasetConfig",
    "EvaluatorConfig",
    "OverfittingConfig",
    "SelectionConfig",
    "StatisticsConfig",
    "SweepConfig",
    "load_sweep",
]
