"""Production cohorts evaluated like any dataset: once, or on a schedule.

Each evaluation of a cohort is a run of kind ``production`` named after the cohort,
with the time in its id, so the dashboard can draw a cohort's fail rate over time.
Unchanged traces cost no judge calls the second time: the judge cache answers.
"""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Any

from heldout._errors import ConfigError
from heldout.config import Settings
from heldout.constitutions import DEFAULT_CONSTITUTION
from heldout.evaluators import Evaluator, evaluators
from heldout.runner import RunSummary, run_evaluation
from heldout.store import Store
from heldout.store._sql import now
from heldout.sweep import EvaluatorConfig
from heldout.tracing._rules import CohortRules
from heldout.tracing._storage import cohort_dataset

PRODUCTION = "production"
"""The kind of the runs that evaluate production cohorts."""


def build_evaluator(config: EvaluatorConfig, settings: Settings) -> Evaluator:
    """The evaluator an entry of the rules file's ``evaluators`` list describes.

    Raises:
        ConfigError: The type is unknown or takes none of the options given.
    """
    cls = evaluators.get(config.type)
    accepted = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = dict(config.options)
    kwargs.update(judge=config.judge, threshold=config.threshold, cohorts=config.cohorts)
    extras: dict[str, Any] = {
        "criteria": config.criteria,
        "axes": config.axes,
        "settings": settings,
        "constitution": _constitution(config.constitution),
        "training_judge": settings.training_judge,
    }
    kwargs.update({k: v for k, v in extras.items() if k in accepted and v is not None})
    unknown = sorted(k for k in kwargs if k not in accepted)
    if unknown:
        raise ConfigError(
            f"evaluator {config.type!r} takes no {', '.join(unknown)}. "
            f"It takes: {', '.join(sorted(accepted))}"
        )
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"evaluator {config.type!r}: {exc}") from exc


def _constitution(value: str | None) -> str | None:
    if value is None or value.endswith((".yaml", ".yml")):
        return value
    shipped = DEFAULT_CONSTITUTION.parent / f"{value}.yaml"
    if not shipped.is_file():
        raise ConfigError(f"constitution {value!r} is neither a .yaml file nor a shipped name")
    return str(shipped)


async def evaluate_cohorts(
    store: Store,
    rules: CohortRules,
    *,
    settings: Settings,
    judge: str | None = None,
    at: datetime | None = None,
    workers: int = 16,
) -> list[RunSummary]:
    """Evaluate every non-empty cohort of ``rules`` with the rules' evaluators.

    Args:
        store: Where the cohorts are and the scores go.
        rules: The cohorts and their evaluators.
        settings: Judge endpoints and limits.
        judge: The judge for evaluators that name none (default: the eval judge).
        at: The time in the runs' ids (default now).
        workers: Rows in progress at once per cohort.

    Returns:
        One summary per cohort evaluated.

    Raises:
        ConfigError: The rules list no evaluators.
    """
    if not rules.evaluators:
        raise ConfigError(
            "the cohort rules list no evaluators: add an 'evaluators:' list "
            "(e.g. '- type: criteria' with 'criteria: ...') to evaluate cohorts"
        )
    built = [build_evaluator(config, settings) for config in rules.evaluators]
    stamp = (at or now()).strftime("%Y%m%dT%H%M%SZ")
    summaries: list[RunSummary] = []
    for rule in rules.cohorts:
        dataset = cohort_dataset(store, rule.name, sample_as=rule.sample_as)
        if len(dataset) == 0:
            continue
        summaries.append(
            await run_evaluation(
                dataset,
                built,
                store=store,
                settings=settings,
                judge=judge,
                run_id=f"{PRODUCTION}-{rule.name}-{stamp}",
                name=rule.name,
                kind=PRODUCTION,
                workers=workers,
            )
        )
    return summaries
