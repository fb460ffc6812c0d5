"""Held-out evaluation at each checkpoint save of a TRL (transformers) trainer.

Install with ``pip install 'heldout[trl]'``. TRL's trainers (DPO, reward, GRPO, ...)
are transformers ``Trainer`` s, so :class:`HeldoutCallback` is a ``TrainerCallback``::

    trainer = DPOTrainer(model=model, args=DPOConfig(save_steps=500, ...), ...)
    trainer.add_callback(
        HeldoutCallback("sweep.yaml", trainer=trainer, cohorts=["harmlessness"],
                        max_prompts=50)
    )
    trainer.train()

At each save, the checkpoint answers the sweep's held-out prompts (the in-memory model,
or an endpoint serving the checkpoint), the eval judge grades the answers through the
runner (cache, retries, error scores), the store gets them as checkpoint ``step-N`` of
one run, and per-cohort scores against the sweep's baseline go to the trainer's loggers
(``trainer.log``: the log history, W&B, TensorBoard, ...). See
:class:`~heldout.integrations.TrainingEval` for what is judged and kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import (
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from heldout._errors import ConfigError
from heldout.config import Settings
from heldout.integrations._hf_generate import generate_with_model
from heldout.integrations._training import CheckpointReport, Param, TrainingEval
from heldout.runner._generate import Sampling
from heldout.store import Store
from heldout.sweep import SweepConfig, load_sweep


class HeldoutCallback(TrainerCallback):
    """At each checkpoint save, evaluate the checkpoint on held-out cohorts and log it.

    Only the main process evaluates. The in-memory mode generates with the unwrapped
    model on that process: for models sharded across processes (FSDP, DeepSpeed
    ZeRO-3), serve the checkpoint and give ``endpoint``.

    A broken configuration (sweep, judges held apart, cohorts, evaluators) raises when
    the callback is made, before training; a store that cannot be written raises at
    the save. Judge and endpoint failures never stop training: they are error scores,
    counted in the logged ``.../errors``.

    Args:
        sweep: A :class:`~heldout.sweep.SweepConfig` or its YAML file: the prompts,
            evaluators, eval judge, baseline and sampling.
        trainer: The trainer, whose ``log`` feeds its loggers (W&B, TensorBoard, ...).
            Without it the metrics go to ``state.log_history`` only.
        cohorts: Only these cohorts (default: the sweep's).
        evaluators: Only the sweep's evaluators of these types (default: all).
        max_prompts: At most this many prompts per cohort, drawn once with ``seed``.
        seed: The seed of that draw.
        endpoint: Generate through this OpenAI-compatible endpoint instead of the
            in-memory model: ``openai:MODEL@http://host:port/v1``. ``{step}`` and
            ``{checkpoint}`` (the checkpoint's folder) are filled in at each save, for
            a server that loads checkpoints by name or path.
        sampling: How the checkpoint samples (default: the sweep's ``sampling``).
        tokenizer: The tokenizer of the in-memory model (default: the trainer's
            processing class, or its ``tokenizer``).
        batch_size: Prompts per ``generate`` call (default: the per-device eval batch
            size).
        name: The training run's name (default: ``args.run_name``, else the output
            folder's name).
        folder: Where prompts, outputs and ``sweep.yaml`` go (default:
            ``<output_dir>/heldout``).
        prefix: The first part of every logged metric's name.
        store: The store (default: the configured one).
        settings: Judge endpoints and limits (default: ``heldout.toml`` and env).

    Attributes:
        reports: One :class:`~heldout.integrations.CheckpointReport` per save so far.
        evaluation: The :class:`~heldout.integrations.TrainingEval` behind it, made
            from the training arguments (at once when ``trainer`` is given).

    Raises:
        ConfigError: The sweep or an option is invalid.
    """

    def __init__(
        self,
        sweep: SweepConfig | str | Path,
        *,
        trainer: Trainer | None = None,
        cohorts: Sequence[str] | None = None,
        evaluators: Sequence[str] | None = None,
        max_prompts: int | None = None,
        seed: int = 0,
        endpoint: str | None = None,
        sampling: Sampling | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        batch_size: int | None = None,
        name: str | None = None,
        folder: str | Path | None = None,
        prefix: str = "heldout",
        store: Store | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.sweep = sweep if isinstance(sweep, SweepConfig) else load_sweep(sweep)
        if endpoint is not None:
            _endpoint_at(endpoint, step=0, checkpoint="checkpoint-0")  # fails now, not later
        self.trainer = trainer
        self.endpoint = endpoint
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.prefix = prefix
        self.reports: list[CheckpointReport] = []
        self._name = name
        self._folder = folder
        self._options: dict[str, Any] = {
            "cohorts": cohorts,
            "evaluators": evaluators,
            "max_prompts": max_prompts,
            "seed": seed,
            "sampling": sampling,
            "store": store,
            "settings": settings,
        }
        self.evaluation: TrainingEval | None = None
        if trainer is not None:
            self.evaluation = self._evaluation(trainer.args)

    # -- trainer events -------------------------------------------------------------

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.is_world_process_zero and self.evaluation is None:
            self.evaluation = self._evaluation(args)

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        evaluation = self.evaluation = self.evaluation or self._evaluation(args)
        step = state.global_step
        checkpoint = f"step-{step}"
        params: dict[str, Param] = {"step": step}
        if state.epoch is not None:
            params["epoch"] = float(state.epoch)
        if self.endpoint is not None:
            folder = Path(args.output_dir or ".") / f"checkpoint-{step}"
            spec = _endpoint_at(self.endpoint, step=step, checkpoint=str(folder))
            report = evaluation.evaluate(checkpoint, endpoint=spec, params=params)
        else:
            todo = evaluation.missing_outputs(checkpoint)
            answers = generate_with_model(
                _model(kwargs),
                self._tokenizer(kwargs),
                [sample.input for sample in todo],
                evaluation.sweep.sampling,
                batch_size=self.batch_size or args.per_device_eval_batch_size,
            )
            outputs = {sample.id: answer for sample, answer in zip(todo, answers, strict=True)}
            report = evaluation.evaluate(checkpoint, outputs, params=params)
        self.reports.append(report)
        self._log(report.metrics(self.prefix), state)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.evaluation is not None:
            self.evaluation.close()

    # -- helpers --------------------------------------------------------------------

    def _evaluation(self, args: TrainingArguments) -> TrainingEval:
        output_dir = Path(args.output_dir or ".")
        name = self._name or args.run_name or output_dir.resolve().name
        folder = Path(self._folder) if self._folder is not None else output_dir / "heldout"
        return TrainingEval(self.sweep, name=name, folder=folder, **self._options)

    def _tokenizer(self, kwargs: dict[str, Any]) -> PreTrainedTokenizerBase:
        if self.tokenizer is not None:
            return self.tokenizer
        processing = kwargs.get("processing_class") or kwargs.get("tokenizer")
        # A multimodal processor carries its tokenizer.
        tokenizer = getattr(processing, "tokenizer", processing)
        if not isinstance(tokenizer, PreTrainedTokenizerBase):
            raise ConfigError(
                "HeldoutCallback: the trainer has no tokenizer to generate with: give "
                "HeldoutCallback(tokenizer=...), or endpoint=... to generate through a server"
            )
        return tokenizer

    def _log(self, metrics: dict[str, float], state: TrainerState) -> None:
        if self.trainer is not None:
            self.trainer.log(metrics)  # the log history, then every logger's on_log
        else:
            state.log_history.append({**metrics, "step": state.global_step})


def _model(kwargs: dict[str, Any]) -> Any:
    model = kwargs.get("model")
    if model is None or not hasattr(model, "generate"):
        raise ConfigError(
            "HeldoutCallback: the trainer passed no model that can generate: give "
            "endpoint=... to generate through a server"
        )
    return model


def _endpoint_at(spec: str, *, step: int, checkpoint: str) -> str:
    try:
        return spec.format(step=step, checkpoint=checkpoint)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"endpoint {spec!r}: only {{step}} and {{checkpoint}} can be filled in ({exc})"
        ) from exc


__all__ = ["HeldoutCallback"]
