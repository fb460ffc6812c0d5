#!/usr/bin/env python3
"""Refusal against XSTest v2 (Röttger et al., 2024): compliance, partial or full refusal.

Rows are the GPT-4 and Mistral-Instruct completions of the 450 XSTest prompts (900 in
all), each labelled by two annotators (``final_label``); the prompt's safe/unsafe label
comes from ``xstest_prompts.csv`` and goes to ``metadata["safety_label"]``. The sample
is fixed, seeded and stratified by (model, human label, prompt label): ``--split test``
(the reported numbers, n=150 by default) or ``--split dev``, a disjoint stratified
sample that prompts were tuned on.

Reports 3-way accuracy, F1 and AUROC of refusal (full or partial) against compliance,
and over-/under-refusal rates predicted by :func:`refusal_rates` next to the human
rates on the same rows. ``--evaluators safety`` (or ``both``) runs ContentSafety on the
rows against a proxy label: harmful = an unsafe prompt the annotators saw complied with.

    uv run python bench/validity/refusal_xstest.py              # ~15 min on 2 busy cores
    uv run python bench/validity/refusal_xstest.py --split dev --n 60
    uv run python bench/validity/refusal_xstest.py --evaluators safety --n 60
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from common import (
    SHARED_DATA,
    Outcome,
    accuracy,
    auroc,
    bootstrap,
    f1,
    parser,
    report_row,
    run,
    stratified_sample,
)

from heldout import Sample
from heldout.evaluators._refusal import Refusal, refusal_rates
from heldout.evaluators._safety import ContentSafety

DEFAULT = SHARED_DATA / "refusal"
MODELS = ("gpt4", "mistralinstruct")
HUMAN = {
    "1_full_compliance": "full_compliance",
    "2_full_refusal": "full_refusal",
    "3_partial_refusal": "partial_refusal",
}


def load(folder: Path) -> list[Sample]:
    """Both models' completions as samples, joined with each prompt's safety label."""
    with (folder / "xstest_prompts.csv").open(newline="", encoding="utf-8") as f:
        safety = {row["id"]: row["label"] for row in csv.DictReader(f)}
    samples = []
    for model in MODELS:
        path = folder / f"xstest_v2_completions_{model}.csv"
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                prompt_id = row["id"].removeprefix("v2-")
                samples.append(
                    Sample(
                        id=f"{model}-{prompt_id}",
                        cohort=model,
                        input=row["prompt"],
                        output=row["completion"],
                        metadata={
                            "safety_label": safety[prompt_id],
                            "human": HUMAN[row["final_label"]],
                            "type": row["type"],
                        },
                    )
                )
    return samples


def stratum(sample: Sample) -> tuple[str, str, str]:
    return sample.cohort, sample.metadata["human"], sample.metadata["safety_label"]


def pick(samples: list[Sample], split: str, n: int, seed: int) -> list[Sample]:
    """The test sample, or a dev sample drawn from the rows the test sample left out."""
    test = stratified_sample(samples, stratum, n if split == "test" else 150, seed)
    if split == "test":
        return test
    taken = {s.id for s in test}
    return stratified_sample([s for s in samples if s.id not in taken], stratum, n, seed + 1)


def _match(t: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(t == p))


def _mean_pred(t: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(p))


def _mean_true(t: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(t))


def refusal_metrics(
    samples: Sequence[Sample], outcome: Outcome
) -> dict[str, tuple[float, float, float]]:
    """3-way accuracy, refusal F1/AUROC and predicted vs human over/under-refusal."""
    by_id = {s.id: s for s in samples}
    ok = [s for s in outcome.scores if s.status == "ok" and s.value is not None]
    labels = list(HUMAN.values())
    human = [labels.index(by_id[s.sample_id].metadata["human"]) for s in ok]
    predicted = [labels.index(s.metadata["label"]) for s in ok]
    human_refused = [float(h != 0) for h in human]
    pred_refused = [float(s.metadata["refused"]) for s in ok]
    p_refused = [1.0 - float(s.value or 0.0) for s in ok]
    safe = [i for i, s in enumerate(ok) if by_id[s.sample_id].metadata["safety_label"] == "safe"]
    unsafe = [i for i in range(len(ok)) if i not in set(safe)]
    # Over-refusal: refusals among safe prompts. Under-refusal: compliance among unsafe.
    over = ([human_refused[i] for i in safe], [pred_refused[i] for i in safe])
    under = ([1 - human_refused[i] for i in unsafe], [1 - pred_refused[i] for i in unsafe])
    return {
        "3-way acc": bootstrap(_match, human, predicted),
        "refusal F1": bootstrap(f1, human_refused, pred_refused),
        "refusal AUROC": bootstrap(auroc, human_refused, p_refused),
        "over-refusal pred": bootstrap(_mean_pred, *over),
        "over-refusal human": bootstrap(_mean_true, *over),
        "under-refusal pred": bootstrap(_mean_pred, *under),
        "under-refusal human": bootstrap(_mean_true, *under),
    }


def safety_metrics(
    samples: Sequence[Sample], outcome: Outcome
) -> dict[str, tuple[float, float, float]]:
    """ContentSafety against the proxy label (unsafe prompt and human-judged compliance)."""
    by_id = {s.id: s for s in samples}
    ok = [s for s in outcome.scores if s.status == "ok" and s.value is not None]
    harmful = [
        float(
            by_id[s.sample_id].metadata["safety_label"] == "unsafe"
            and by_id[s.sample_id].metadata["human"] == "full_compliance"
        )
        for s in ok
    ]
    flagged = [float(not s.passed) for s in ok]
    p_unsafe = [1.0 - float(s.value or 0.0) for s in ok]
    return {
        "acc": bootstrap(accuracy, harmful, flagged),
        "F1(harmful)": bootstrap(f1, harmful, flagged),
        "AUROC": bootstrap(auroc, harmful, p_unsafe),
    }


def confusion(samples: Sequence[Sample], outcome: Outcome) -> list[str]:
    """Human label (rows) against predicted label (columns), counts only."""
    by_id = {s.id: s for s in samples}
    cells = Counter(
        (by_id[s.sample_id].metadata["human"], s.metadata["label"])
        for s in outcome.scores
        if s.status == "ok"
    )
    names = list(HUMAN.values())
    lines = ["  human \\ predicted      " + " ".join(f"{n[:12]:>12}" for n in names)]
    for h in names:
        lines.append(f"  {h:<22} " + " ".join(f"{cells[(h, p)]:>12}" for p in names))
    return lines


def main() -> None:
    p = parser(__doc__.splitlines()[1] if __doc__ else "", DEFAULT, 150)
    p.add_argument("--split", choices=("test", "dev"), default="test")
    p.add_argument("--threshold", type=float, default=None, help="P(compliance) mark")
    p.add_argument(
        "--evaluators",
        choices=("refusal", "safety", "both"),
        default="refusal",
        help="Refusal, ContentSafety (proxy label) or both on the same rows",
    )
    args = p.parse_args()
    samples = pick(load(args.data), args.split, args.n, args.seed)
    n = len(samples)
    strata = Counter(stratum(s) for s in samples)
    print(f"XSTest v2 {args.split}: n={n}, seed={args.seed}, stratified by model x human x prompt")
    print("  strata:", {"/".join(k): v for k, v in sorted(strata.items())})
    if args.evaluators != "safety":
        outcome = run(Refusal(threshold=args.threshold), samples, args.judge, args.store)
        metrics = refusal_metrics(samples, outcome)
        print(report_row("refusal / XSTest", args.judge, outcome, metrics, n))
        print(f"  refusal_rates: {refusal_rates(outcome.scores)}")
        print("\n".join(confusion(samples, outcome)))
    if args.evaluators != "refusal":
        safety = run(ContentSafety(), samples, args.judge, args.store)
        name = "content_safety / XSTest (proxy label)"
        print(report_row(name, args.judge, safety, safety_metrics(samples, safety), n))


if __name__ == "__main__":
    main()
