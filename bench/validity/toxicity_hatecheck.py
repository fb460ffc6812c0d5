#!/usr/bin/env python3
"""Toxicity against HateCheck (Röttger et al., 2021): does P(toxic) find hate?

Each HateCheck case is a short text, gold-labelled hateful or non-hateful, written to
test one of 29 functionalities (slurs, threats, negation, counter-speech, spelling
variants...). The case goes in as the output to judge. The sample is fixed, seeded and
stratified by functionality: ``--split test`` (the reported numbers, n=150 by default)
or ``--split dev``, a disjoint stratified sample that prompts were tuned on.

HateCheck's ``profanity_nh`` cases ("non-hateful use of profanity") are toxic under
heldout's definition, which counts profanity; the row without them is printed too.

    uv run python bench/validity/toxicity_hatecheck.py            # ~10 min on 2 busy cores
    uv run python bench/validity/toxicity_hatecheck.py --split dev --n 60

Prints markdown rows (metric [95% bootstrap interval]) and per-functionality
accuracy; the texts themselves are never printed.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

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
from heldout.evaluators._toxicity import Toxicity

DEFAULT = SHARED_DATA / "toxicity" / "hatecheck_test_suite_cases.csv"
PROFANITY_NH = "profanity_nh"


def load(path: Path) -> list[Sample]:
    """HateCheck cases as samples; the gold label goes to ``metadata["hateful"]``."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [
        Sample(
            id=f"hatecheck-{row['case_id']}",
            cohort=row["functionality"],
            input="",
            output=row["test_case"],
            metadata={"hateful": row["label_gold"] == "hateful"},
        )
        for row in rows
    ]


def pick(samples: list[Sample], split: str, n: int, seed: int) -> list[Sample]:
    """The test sample, or a dev sample drawn from the rows the test sample left out."""
    test = stratified_sample(samples, lambda s: s.cohort, n if split == "test" else 150, seed)
    if split == "test":
        return test
    taken = {s.id for s in test}
    rest = [s for s in samples if s.id not in taken]
    return stratified_sample(rest, lambda s: s.cohort, n, seed + 1)


def metrics(samples: Sequence[Sample], outcome: Outcome) -> dict[str, tuple[float, float, float]]:
    """Accuracy and F1 of the pass/fail decision, AUROC of P(toxic), over ok scores."""
    by_id = {s.id: s for s in samples}
    ok = [s for s in outcome.scores if s.status == "ok" and s.value is not None]
    truth = [float(by_id[s.sample_id].metadata["hateful"]) for s in ok]
    flagged = [float(not s.passed) for s in ok]
    p_toxic = [1.0 - float(s.value or 0.0) for s in ok]
    return {
        "acc": bootstrap(accuracy, truth, flagged),
        "F1(hateful)": bootstrap(f1, truth, flagged),
        "AUROC": bootstrap(auroc, truth, p_toxic),
    }


def per_functionality(samples: Sequence[Sample], outcome: Outcome) -> list[str]:
    """One line per functionality: correct / judged."""
    by_id = {s.id: s for s in samples}
    right: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for score in outcome.scores:
        if score.status != "ok":
            continue
        sample = by_id[score.sample_id]
        seen[sample.cohort] += 1
        right[sample.cohort] += (not score.passed) == sample.metadata["hateful"]
    return [f"  {name:<22} {right[name]:>2}/{seen[name]:<2}" for name in sorted(seen)]


def main() -> None:
    p = parser(__doc__.splitlines()[1] if __doc__ else "", DEFAULT, 150)
    p.add_argument("--split", choices=("test", "dev"), default="test")
    p.add_argument("--threshold", type=float, default=None, help="P(not toxic) pass mark")
    p.add_argument(
        "--no-categories", action="store_true", help="skip the category call (for tuning)"
    )
    args = p.parse_args()
    samples = pick(load(args.data), args.split, args.n, args.seed)
    evaluator = Toxicity(threshold=args.threshold, categorize=not args.no_categories)
    outcome = run(evaluator, samples, args.judge, args.store)
    n = len(samples)
    print(f"HateCheck {args.split}: n={n}, seed={args.seed}, stratified by functionality")
    labels = Counter(bool(s.metadata["hateful"]) for s in samples)
    print(f"  hateful {labels[True]}, non-hateful {labels[False]}")
    print(report_row("toxicity / HateCheck", args.judge, outcome, metrics(samples, outcome), n))
    kept = [s for s in samples if s.cohort != PROFANITY_NH]
    kept_ids = {s.id for s in kept}
    narrowed = Outcome(
        scores=[s for s in outcome.scores if s.sample_id in kept_ids],
        seconds=outcome.seconds,
        calls=outcome.calls,
        errors=sum(s.status == "error" and s.sample_id in kept_ids for s in outcome.scores),
    )
    name = "toxicity / HateCheck without profanity_nh"
    print(report_row(name, args.judge, narrowed, metrics(kept, narrowed), len(kept)))
    categories: defaultdict[str, int] = defaultdict(int)
    for score in outcome.scores:
        if score.status == "ok" and score.metadata.get("category"):
            categories[str(score.metadata["category"])] += 1
    print("categories named for toxic outputs:", dict(sorted(categories.items())))
    print("accuracy per functionality:")
    print("\n".join(per_functionality(samples, outcome)))


if __name__ == "__main__":
    main()
