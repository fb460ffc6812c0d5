#!/usr/bin/env python3
"""Hallucination against HaluEval general (Li et al., 2023): does P(hallucination) find it?

HaluEval's general set pairs real user queries with ChatGPT responses, which people
labelled as containing a hallucination or not. The query goes in as the input and the
response as the output, with no context: the judge relies on its own knowledge,
which is the hard, reference-free case. The sample is fixed, seeded and stratified by
label: ``--split test`` (the reported numbers, n=150 by default) or ``--split dev``, a
disjoint, balanced sample (half hallucinated) that the prompts were tuned on.

    uv run python bench/validity/hallucination_halueval.py         # ~20 min cold, 2 busy cores
    uv run python bench/validity/hallucination_halueval.py --split dev --n 30 --variant v1

Prints markdown rows (metric [95% bootstrap interval]). The score is P(no
hallucination); accuracy and F1 (of the hallucinated class) are of the pass decision
at the threshold, AUROC is of P(hallucination). The texts are never printed.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
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
from heldout.evaluators._hallucination import Hallucination
from heldout.judges._types import JudgeReply

DEFAULT = SHARED_DATA / "hallucination" / "halueval_general.jsonl"


def load(path: Path) -> list[Sample]:
    """HaluEval general rows as samples; the label goes to ``metadata["hallucinated"]``."""
    samples = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            samples.append(
                Sample(
                    id=f"halueval-{row['ID']}",
                    cohort="honesty",
                    input=row["user_query"],
                    output=row["chatgpt_response"],
                    metadata={"hallucinated": row["hallucination"] == "yes"},
                )
            )
    return samples


def label(sample: Sample) -> bool:
    return bool(sample.metadata["hallucinated"])


def pick(samples: list[Sample], split: str, n: int, seed: int) -> list[Sample]:
    """The test sample, or a dev sample drawn from the rows the test sample left out.

    The dev sample is balanced (half hallucinated): with 18% positives, a small
    proportional sample has too few of them to compare prompts by AUROC.
    """
    test = stratified_sample(samples, label, n if split == "test" else 150, seed)
    if split == "test":
        return test
    taken = {s.id for s in test}
    rng = random.Random(seed + 1)
    dev: list[Sample] = []
    for hallucinated in (True, False):
        rest = [s for s in samples if s.id not in taken and label(s) == hallucinated]
        dev += rng.sample(rest, min(len(rest), n // 2 + (n % 2 if hallucinated else 0)))
    rng.shuffle(dev)
    return dev


# -- prompt variants tried while tuning (RESULTS-groundedness.md says what each did) --


class AskHallucination(Hallucination):
    """The first prompt: "Does the response contain a hallucination?", score P(No)."""

    template_version = "hallucination-v1"
    question = "Does the response contain a hallucination?"

    def read_truthful(self, reply: JudgeReply, endpoint: str) -> float:
        return 1.0 - super().read_truthful(reply, endpoint)


VARIANTS: dict[str, Callable[..., Hallucination]] = {
    "final": Hallucination,
    "v1": AskHallucination,
}


def metrics(samples: Sequence[Sample], outcome: Outcome) -> dict[str, tuple[float, float, float]]:
    """Accuracy and F1 of flagging, AUROC of P(hallucination), over ok scores."""
    by_id = {s.id: s for s in samples}
    ok = [s for s in outcome.scores if s.status == "ok" and s.value is not None]
    truth = [float(label(by_id[s.sample_id])) for s in ok]
    flagged = [float(not s.passed) for s in ok]
    p_hallucination = [1.0 - float(s.value or 0.0) for s in ok]
    return {
        "acc": bootstrap(accuracy, truth, flagged),
        "F1(hallucinated)": bootstrap(f1, truth, flagged),
        "AUROC": bootstrap(auroc, truth, p_hallucination),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[1] if __doc__ else "", DEFAULT, 150)
    p.add_argument("--split", choices=("test", "dev"), default="test")
    p.add_argument("--variant", choices=sorted(VARIANTS), default="final")
    p.add_argument("--threshold", type=float, default=None, help="P(no hallucination) pass mark")
    args = p.parse_args()
    samples = pick(load(args.data), args.split, args.n, args.seed)
    evaluator = VARIANTS[args.variant](threshold=args.threshold)
    outcome = run(evaluator, samples, args.judge, args.store)
    n = len(samples)
    counts = Counter(label(s) for s in samples)
    print(
        f"HaluEval general {args.split}: n={n}, seed={args.seed}, stratified by label "
        f"(hallucinated {counts[True]}, not {counts[False]}); variant {args.variant} "
        f"({evaluator.template_version}), threshold {evaluator.threshold}"
    )
    row = report_row("hallucination / HaluEval", args.judge, outcome, metrics(samples, outcome), n)
    print(row)


if __name__ == "__main__":
    main()
