"""Shared pieces of the validity benchmarks: sampling, running an evaluator, metrics.

Every script here reads a labeled set from ``../shared/data`` (a path argument),
draws a fixed, seeded, stratified sample, runs a heldout evaluator through the real
runner (scores and judge replies go to a SQLite store, so a rerun is free), and prints
a markdown row: the metric against the human labels with a 95% bootstrap interval,
the sample size, judge calls and time. The data never leaves ``../shared``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from scipy import stats

from heldout import Evaluator, Sample, Store, load_settings, run_evaluation
from heldout.evaluators import Score

T = TypeVar("T")

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
DEFAULT_STORE = Path("/tmp/heldout-validity/store.db")


def parser(description: str, default_data: Path, default_n: int) -> argparse.ArgumentParser:
    """The command line every validity script takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", type=Path, default=default_data, help="the labeled file")
    p.add_argument("--n", type=int, default=default_n, help="sample size (0 = all rows)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--judge", default="local:qwen2.5-1.5b", help="judge spec")
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help="SQLite store (a cache)")
    return p


def stratified_sample(
    rows: Sequence[T], key: Callable[[T], Hashable], n: int, seed: int
) -> list[T]:
    """``n`` rows with each stratum kept in proportion (at least one per stratum)."""
    if n <= 0 or n >= len(rows):
        return list(rows)
    groups: dict[Hashable, list[T]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    rng = random.Random(seed)
    picked: list[T] = []
    for name in sorted(groups, key=str):
        members = groups[name]
        take = max(1, round(n * len(members) / len(rows)))
        picked.extend(rng.sample(members, min(take, len(members))))
    rng.shuffle(picked)
    return picked[:n]


@dataclass(frozen=True)
class Outcome:
    """Scores of one validity run, in the order of the samples given."""

    scores: list[Score]
    seconds: float
    calls: int
    errors: int


def run(evaluator: Evaluator, samples: Sequence[Sample], judge: str, store_path: Path) -> Outcome:
    """Run ``evaluator`` on ``samples`` through the real runner and store."""
    store_path.parent.mkdir(parents=True, exist_ok=True)
    store = Store.open(f"sqlite:///{store_path}")
    settings = load_settings()
    started = time.perf_counter()
    try:
        summary = asyncio.run(
            run_evaluation(
                samples,
                [evaluator],
                store=store,
                settings=settings,
                judge=judge,
                name=f"validity:{evaluator.name}",
            )
        )
        by_id = {s.sample_id: s for s in store.scores(summary.run_id)}
    finally:
        store.close()
    scores = [by_id[s.id] for s in samples if s.id in by_id]
    return Outcome(
        scores=scores,
        seconds=time.perf_counter() - started,
        calls=summary.judge_calls,
        errors=sum(s.status == "error" for s in scores),
    )


def bootstrap(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y_true: Sequence[float],
    y_pred: Sequence[float],
    *,
    seed: int = 0,
    resamples: int = 2000,
) -> tuple[float, float, float]:
    """The metric and its 95% percentile bootstrap interval over rows."""
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    value = metric(t, p)
    result = stats.bootstrap(
        (t, p),
        metric,
        paired=True,
        vectorized=False,
        n_resamples=resamples,
        confidence_level=0.95,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return value, float(ci.low), float(ci.high)


def accuracy(t: np.ndarray, p: np.ndarray) -> float:
    """Share of rows where the thresholded prediction equals the label."""
    return float(np.mean((p >= 0.5) == (t >= 0.5)))


def f1(t: np.ndarray, p: np.ndarray) -> float:
    """F1 of the positive class (label 1) at threshold 0.5."""
    pred, true = p >= 0.5, t >= 0.5
    tp = float(np.sum(pred & true))
    denom = float(np.sum(pred) + np.sum(true))
    return 0.0 if denom == 0 else 2 * tp / denom


def auroc(t: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (probability a positive outranks a negative)."""
    pos, neg = p[t >= 0.5], p[t < 0.5]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
    return float(u / (len(pos) * len(neg)))


def report_row(
    name: str, judge: str, outcome: Outcome, metrics: dict[str, tuple[float, float, float]], n: int
) -> str:
    """One markdown table row."""
    cells = " | ".join(f"{k} {v:.3f} [{lo:.3f}, {hi:.3f}]" for k, (v, lo, hi) in metrics.items())
    per = outcome.seconds / max(1, outcome.calls)
    return (
        f"| {name} | {judge} | {n} | {cells} | {outcome.errors} | {outcome.calls} | "
        f"{outcome.seconds:.0f} s ({per:.2f} s/call) |"
    )
