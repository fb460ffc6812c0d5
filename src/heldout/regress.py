"""RegressionEval: every checkpoint of a sweep against the held-out cohorts.

The flow of :meth:`RegressionEval.run`::

    sweep file ─> prompts (cohorts) ─> each checkpoint's outputs
                    │ files are read; endpoints and GGUF files generate, cached
                    ▼
    runner: every evaluator on every checkpoint's rows, interleaved, resumable
                    ▼
    analysis: means with intervals, paired deltas against the baseline under
              Holm/BH, eval-fail rates, regressions and fixes, the checkpoint to ship
                    ▼
    JSON, CSV and an HTML report

A rerun of the same sweep resumes its run: no output is generated twice and no
finished score is computed again. A prompt whose generation failed is recorded as an
``error`` score on every evaluator of its row (never a score), and retried next time.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heldout._errors import ConfigError, JudgeError
from heldout._sync import run_sync
from heldout.analysis import (
    OverfitReport,
    RegressionTable,
    RowChange,
    Selection,
    judge_overfitting,
    regression_table,
    row_changes,
    scores_from_verdicts,
    select_checkpoint,
    training_judge_sweep,
)
from heldout.analysis._axes import in_sweep_order, stored_axis_scores
from heldout.config import Settings, load_settings
from heldout.constitutions import DEFAULT_CONSTITUTION
from heldout.data import Dataset, Sample, load_verdicts, with_checkpoint_outputs
from heldout.evaluators import CustomEvaluation, Evaluator, Score, evaluators
from heldout.evaluators._custom import model_key
from heldout.judges import JudgeClient, ReplicaPool
from heldout.judges._replicas import replica_client
from heldout.runner import Progress, RunSummary, run_evaluation
from heldout.runner._generate import Generated, OutputProgress, Sampling, generate_outputs
from heldout.runner._runner import join_ray
from heldout.store import GroupWriter, Store, StoredScore
from heldout.sweep import EvaluatorConfig, SweepConfig, load_sweep


@dataclass
class RegressionResult:
    """What a sweep found.

    Attributes:
        sweep: The sweep, with its paths resolved.
        run_id: The run in the store holding every score.
        summary: What the runner computed and resumed (None when only analysed).
        generated: Per generated checkpoint: outputs made, cached and failed.
        table: Per checkpoint, cohort and metric: mean, interval, delta, test.
        changes: Rows the baseline passed that a checkpoint fails, and the reverse.
        selection: The checkpoint to ship and why each other was passed over.
        overfitting: Per checkpoint, whether it rose under the training judge only
            (None unless the sweep asks for the flag).
    """

    sweep: SweepConfig
    run_id: str
    summary: RunSummary | None
    table: RegressionTable
    changes: list[RowChange]
    selection: Selection | None
    generated: dict[str, Generated] = field(default_factory=dict)
    overfitting: OverfitReport | None = None

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready data."""
        return {
            "sweep": self.sweep.model_dump(mode="json"),
            "run_id": self.run_id,
            "baseline": self.table.baseline,
            "checkpoints": {
                c.name: {"source": _source(c), "params": c.params} for c in self.sweep.checkpoints
            },
            "generation_failures": {
                name: {sid: str(err) for sid, err in g.failures.items()}
                for name, g in self.generated.items()
            },
            "table": self.table.to_records(),
            "changes": [c.model_dump(mode="json") for c in self.changes],
            "selection": None if self.selection is None else self.selection.model_dump(mode="json"),
            "overfitting": (
                None if self.overfitting is None else self.overfitting.model_dump(mode="json")
            ),
        }

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON; returns the path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.to_dict(), indent=2, default=str), encoding="utf-8")
        return out

    def write_csv(self, path: str | Path) -> Path:
        """Write the table, one line per (checkpoint, cohort, metric); returns the path."""
        records = self.table.to_records()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]) if records else ["empty"])
            writer.writeheader()
            writer.writerows(records)
        return out


class RegressionEval:
    """Evaluate every checkpoint of a sweep against its baseline.

    Args:
        sweep: A :class:`~heldout.sweep.SweepConfig` or the path of a sweep YAML file.
        store: Where outputs, scores and judge replies go; default the configured store
            (opened and closed by :meth:`run`).
        settings: Judge endpoints and limits; default from ``heldout.toml`` and env.

    Example:
        >>> result = RegressionEval("sweep.yaml").run()  # doctest: +SKIP
        >>> result.selection.chosen  # doctest: +SKIP
        'dpo-beta-0.1'
    """

    def __init__(
        self,
        sweep: SweepConfig | str | Path,
        *,
        store: Store | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.sweep = sweep if isinstance(sweep, SweepConfig) else load_sweep(sweep)
        self.settings = settings or load_settings()
        self._store = store
        self._training: RegressionEval | None = None
        self.eval_judge = self.sweep.eval_judge or self.settings.eval_judge
        self.training_judge = (
            self.sweep.training_judge
            or _labeler_of(self.sweep.training_labels)
            or self.settings.training_judge
        )
        self._check_held_apart()
        self._check_overfitting()
        self.evaluators = [self._evaluator(c) for c in self.sweep.evaluators]
        self.prompts = self._prompts()
        self.run_id = f"regress-{self.sweep.name}-{self._digest()}"

    def run(
        self, *, progress: Progress | None = None, outputs: OutputProgress | None = None
    ) -> RegressionResult:
        """Generate what is missing, judge what is not judged yet, and analyse."""
        return run_sync(self.arun(progress=progress, outputs=outputs))

    async def arun(
        self, *, progress: Progress | None = None, outputs: OutputProgress | None = None
    ) -> RegressionResult:
        """The async twin of :meth:`run`."""
        store = self._store or Store.open(self.settings.db_url)
        try:
            return await self._run_on(store, progress, outputs)
        finally:
            if self._store is None:
                store.close()

    async def _run_on(
        self, store: Store, progress: Progress | None, outputs: OutputProgress | None
    ) -> RegressionResult:
        by_checkpoint, generated = await self._outputs(store, outputs)
        self._begin(store)
        self._record_generation_failures(store, generated)
        summary = await run_evaluation(
            by_checkpoint,
            self.evaluators,
            store=store,
            settings=self.settings,
            judge=self.eval_judge,
            run_id=self.run_id,
            name=self.sweep.name,
            kind="regress",
            workers=self.sweep.workers,
            progress=progress,
        )
        if self._rejudges:  # the same outputs, judged again by the training judge
            await self._training_view()._run_on(store, progress, outputs)
        result = self.analyse(store)
        result.summary, result.generated = summary, generated
        return result

    def analyse(self, store: Store) -> RegressionResult:
        """The table, changes and selection from the scores stored so far (no calls)."""
        result = analyse_scores(self.sweep, self.run_id, self._stored_scores(store))
        result.overfitting = self._overfitting(store, result.table)
        return result

    def _stored_scores(self, store: Store) -> list[StoredScore]:
        """This run's stored scores in sweep order, with the per-axis metrics."""
        checkpoints = [c.name for c in self.sweep.checkpoints]
        return stored_axis_scores(store, self.run_id, checkpoints, self._constitution_evaluators())

    def metric_scores(self, scores: Iterable[StoredScore]) -> list[StoredScore]:
        """Scores in sweep order, with one more metric per constitutional axis."""
        checkpoints = [c.name for c in self.sweep.checkpoints]
        return in_sweep_order(scores, checkpoints, self._constitution_evaluators())

    def _constitution_evaluators(self) -> dict[str, tuple[str, ...]]:
        return {e.name: e.axes for e in self.evaluators if isinstance(e, CustomEvaluation)}

    # -- set-up ---------------------------------------------------------------------

    def _check_held_apart(self) -> None:
        """Refuse an eval judge (the sweep's or an evaluator's) that is the training judge.

        Specs are compared by model, as CustomEvaluation does: ``openai:gpt-4o`` and
        ``openai:gpt-4o-2024-08-06@http://proxy/v1`` are the same judge.
        """
        if not self.training_judge or self.sweep.allow_training_judge:
            return
        trained = model_key(self.training_judge)
        judges = [self.eval_judge, *(c.judge for c in self.sweep.evaluators if c.judge)]
        for spec in dict.fromkeys(judges):
            if model_key(spec) == trained:
                raise ConfigError(
                    f"sweep {self.sweep.name!r}: the eval judge {spec!r} is the training "
                    f"judge {self.training_judge!r}. A policy trained on its preferences "
                    "will look better to it than it is. Choose another eval_judge, or set "
                    "allow_training_judge: true to go on anyway."
                )

    def _check_overfitting(self) -> None:
        """The flag needs the training judge's verdicts, or a training judge to ask."""
        config = self.sweep.overfitting
        if config is not None and config.verdicts is None and not self.training_judge:
            raise ConfigError(
                f"sweep {self.sweep.name!r}: overfitting needs the training judge's view: "
                "set training_judge (or training_labels), or overfitting.verdicts"
            )

    # -- the judge-overfitting flag -------------------------------------------------

    @property
    def _rejudges(self) -> bool:
        """Whether the overfitting flag needs the training judge to judge the outputs."""
        config = self.sweep.overfitting
        return config is not None and config.verdicts is None

    def _training_view(self) -> RegressionEval:
        """The same sweep judged by the training judge, for the overfitting flag."""
        if self._training is None:
            sweep = training_judge_sweep(self.sweep, self.training_judge)
            sweep = sweep.model_copy(update={"overfitting": None, "selection": None})
            self._training = RegressionEval(sweep, store=self._store, settings=self.settings)
        return self._training

    def _overfitting(self, store: Store, table: RegressionTable) -> OverfitReport | None:
        """The flag per checkpoint from what is stored or imported (no judge calls)."""
        config = self.sweep.overfitting
        if config is None:
            return None
        if config.verdicts is None:
            view = self._training_view()
            training = sweep_table(view.sweep, view._stored_scores(store))
        else:
            verdicts = scores_from_verdicts(load_verdicts(config.verdicts))
            training = sweep_table(self.sweep, verdicts)
        return judge_overfitting(training, table, metrics=config.metrics)

    def _evaluator(self, config: EvaluatorConfig) -> Evaluator:
        cls = evaluators.get(config.type)
        kwargs: dict[str, Any] = dict(config.options)
        kwargs.update(judge=config.judge, threshold=config.threshold, cohorts=config.cohorts)
        accepted = inspect.signature(cls).parameters
        extras = {
            "constitution": self._constitution(config.constitution),
            "axes": config.axes,
            "settings": self.settings,
            "training_judge": self.training_judge,
            "allow_training_judge": self.sweep.allow_training_judge,
        }
        for name, value in extras.items():
            if name in accepted and value is not None:
                kwargs[name] = value
        if config.criteria is not None:
            kwargs["criteria"] = config.criteria
        unknown = sorted(k for k in kwargs if k not in accepted)
        if unknown:
            raise ConfigError(
                f"sweep {self.sweep.name!r}: evaluator {config.type!r} takes no "
                f"{', '.join(unknown)}. It takes: {', '.join(sorted(accepted))}"
            )
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(
                f"sweep {self.sweep.name!r}: evaluator {config.type!r}: {exc}"
            ) from exc

    def _constitution(self, value: str | None) -> str | None:
        """A constitution file; a shipped name (``default``) becomes the shipped file."""
        if value is None or value.endswith((".yaml", ".yml")):
            return value
        folder = DEFAULT_CONSTITUTION.parent
        shipped = folder / f"{value}.yaml"
        if not shipped.is_file():
            available = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
            raise ConfigError(
                f"sweep {self.sweep.name!r}: constitution {value!r} is neither a .yaml file "
                f"nor a shipped constitution. Shipped: {available}"
            )
        return str(shipped)

    def _prompts(self) -> Dataset:
        source = self.sweep.dataset
        prompts = Dataset.load(source.path, mapping=source.mapping, cohort=source.cohort)
        return prompts if source.cohorts is None else prompts.filter(cohorts=source.cohorts)

    def _digest(self) -> str:
        """What the run's scores depend on: the sweep, the prompts and the output files."""
        digest = hashlib.sha256(self.sweep.digest().encode())
        digest.update(self.prompts.fingerprint().encode())
        for checkpoint in self.sweep.checkpoints:
            if checkpoint.outputs is not None:
                digest.update(hashlib.sha256(checkpoint.outputs.read_bytes()).digest())
        digest.update(self.eval_judge.encode())
        return digest.hexdigest()[:12]

    # -- outputs --------------------------------------------------------------------

    async def _outputs(
        self, store: Store, progress: OutputProgress | None
    ) -> tuple[dict[str, Sequence[Sample]], dict[str, Generated]]:
        by_checkpoint: dict[str, Sequence[Sample]] = {}
        served: dict[str, tuple[list[str], Sampling]] = {}
        for checkpoint in self.sweep.checkpoints:
            if checkpoint.outputs is not None:
                by_checkpoint[checkpoint.name] = list(
                    with_checkpoint_outputs(self.prompts, checkpoint.outputs, name=checkpoint.name)
                )
            elif checkpoint.replicas:
                served[checkpoint.name] = (checkpoint.replicas, self.sweep.sampling_of(checkpoint))
        generated: dict[str, Generated] = {}
        if served and self.settings.backend == "ray":
            cluster = join_ray(store, self.settings, [], self.eval_judge, self.sweep.workers)
            generated = await cluster.generate(list(self.prompts), served, progress=progress)
        elif served:
            generated = await self._generate_here(store, served, progress)
        for checkpoint in self.sweep.checkpoints:  # keep the sweep's order
            if checkpoint.name in generated:
                by_checkpoint[checkpoint.name] = generated[checkpoint.name].samples
        ordered = {c.name: by_checkpoint[c.name] for c in self.sweep.checkpoints}
        return ordered, generated

    async def _generate_here(
        self,
        store: Store,
        served: dict[str, tuple[list[str], Sampling]],
        progress: OutputProgress | None,
    ) -> dict[str, Generated]:
        policies: dict[str, tuple[JudgeClient | ReplicaPool, Sampling]] = {}
        async with GroupWriter(store) as cache:
            try:
                for name, (specs, sampling) in served.items():
                    policies[name] = (replica_client(specs, self.settings, cache=cache), sampling)
                return await generate_outputs(
                    list(self.prompts), policies, workers=self.sweep.workers, progress=progress
                )
            finally:
                for client, _ in policies.values():
                    await client.aclose()

    def _begin(self, store: Store) -> None:
        store.begin_run(self.run_id, name=self.sweep.name, kind="regress", config=self._config())

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "sweep": self.sweep.model_dump(mode="json"),
            "evaluators": [e.config() for e in self.evaluators],
            "judge": self.eval_judge,
            "checkpoints": [c.name for c in self.sweep.checkpoints],
        }
        if self._rejudges:
            # Where the dashboard finds the training judge's view for the flag.
            config["training_run"] = self._training_view().run_id
        return config

    def _record_generation_failures(self, store: Store, generated: dict[str, Generated]) -> None:
        for name, result in generated.items():
            record_generation_failures(
                store, self.run_id, self.prompts, self.evaluators, name, result.failures
            )


def record_generation_failures(
    store: Store,
    run_id: str,
    prompts: Dataset,
    evaluators: Sequence[Evaluator],
    checkpoint: str,
    failures: Mapping[str, JudgeError],
) -> None:
    """An error score per evaluator for each prompt ``checkpoint`` produced no output for.

    The prompt is stored as the checkpoint's row, so the error is counted (never averaged
    in) and the rerun retries it.
    """
    failed = [prompts.by_id(sample_id) for sample_id in failures]
    if not failed:
        return
    store.put_samples(run_id, failed, checkpoint=checkpoint)
    scores = [
        _generation_error(sample, evaluator, failures[sample.id])
        for sample in failed
        for evaluator in evaluators
        if evaluator.applies_to(sample)
    ]
    store.write_scores(run_id, scores, checkpoint=checkpoint)


def analyse_scores(
    sweep: SweepConfig, run_id: str, scores: Sequence[StoredScore]
) -> RegressionResult:
    """The table, changes and selection of a sweep from its scores (no judge calls).

    Args:
        sweep: The sweep: baseline, statistics and selection settings.
        run_id: The run the scores belong to.
        scores: Every score, in sweep order, with axis metrics already added (see
            :meth:`RegressionEval.metric_scores`).
    """
    table = sweep_table(sweep, scores)
    selection = None
    if sweep.selection is not None:
        chosen = sweep.selection
        selection = select_checkpoint(
            table,
            objective=chosen.objective,
            guards=chosen.guards,
            max_error_rate=chosen.max_error_rate,
        )
    return RegressionResult(
        sweep=sweep,
        run_id=run_id,
        summary=None,
        table=table,
        changes=row_changes(scores, baseline=sweep.baseline),
        selection=selection,
    )


def sweep_table(sweep: SweepConfig, scores: Iterable[StoredScore]) -> RegressionTable:
    """The regression table of ``scores`` with the sweep's baseline and statistics."""
    stats = sweep.statistics
    return regression_table(
        scores,
        baseline=sweep.baseline,
        confidence=stats.confidence,
        test=stats.test,
        correction=stats.correction,
        alpha=stats.alpha,
        n_resamples=stats.n_resamples,
        seed=stats.seed,
    )


def _labeler_of(path: Path | None) -> str | None:
    """The labeler recorded in a ``heldout label`` output, the judge a policy trained on."""
    if path is None:
        return None
    from heldout.labeling import read_labeler  # only when the sweep names a labels file

    return read_labeler(path)


def _generation_error(sample: Sample, evaluator: Evaluator, error: JudgeError) -> Score:
    return Score(
        sample_id=sample.id,
        cohort=sample.cohort,
        evaluator=evaluator.name,
        status="error",
        error_kind="generation",
        error=f"the checkpoint produced no output: {error}",
        template_version=evaluator.template_version,
    )


def _source(checkpoint: Any) -> str:
    if checkpoint.outputs is not None:
        return f"outputs:{checkpoint.outputs}"
    return " | ".join(checkpoint.replicas)


__all__ = ["RegressionEval", "RegressionResult", "analyse_scores", "sweep_table"]
