#!/usr/bin/env python3
"""Groundedness against BEGIN (Dziri et al., 2022): is the response attributable?

BEGIN pairs a knowledge passage and a dialogue message with a system's response,
labelled by people: "Fully attributable" to the passage (grounded, 1), "Not fully
attributable" or "Generic" (0). The passage goes in as the context, the message as
the input and the response as the output. Both dev files (WoW and CMU-DoG) are
pooled; the sample is fixed, seeded and stratified by source and label:
``--split test`` (the reported numbers; n=150 by default, 149 after per-stratum
rounding) or ``--split dev``, a disjoint stratified sample that the prompts were
tuned on.

    uv run python bench/validity/groundedness_begin.py            # ~30 min cold, 2 busy cores
    uv run python bench/validity/groundedness_begin.py --claim-cutoff 0.7  # cached: seconds
    uv run python bench/validity/groundedness_begin.py --split dev --n 40 --variant fewshot

Prints markdown rows (metric [95% bootstrap interval]): all rows, each source, each
label. The score is the supported fraction of the response's claims; accuracy and F1
are of the pass decision (all claims supported, the default threshold of 1.0);
AUROC is of the score, and of the mean and least claim P(Yes) as diagnostics. The
texts themselves are never printed.
"""

from __future__ import annotations

import csv
import sys
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
from heldout.evaluators import Score
from heldout.evaluators._groundedness import Groundedness
from heldout.judges._types import JudgeReply

DEFAULT = SHARED_DATA / "groundedness"
SOURCES = ("wow", "cmu")
GROUNDED = "Fully attributable"

csv.field_size_limit(sys.maxsize)


def load(folder: Path) -> list[Sample]:
    """Both BEGIN dev files as samples; the label goes to ``metadata``."""
    samples = []
    for source in SOURCES:
        path = folder / f"begin_dev_{source}.tsv"
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            for line, row in enumerate(reader, start=2):
                samples.append(
                    Sample(
                        id=f"begin-{source}-{line}",
                        cohort=source,
                        input=row["message"],
                        output=row["response"],
                        context=row["knowledge"],
                        metadata={"label": row["begin_label"]},
                    )
                )
    return samples


def stratum(sample: Sample) -> str:
    return f"{sample.cohort}/{sample.metadata['label']}"


def pick(samples: list[Sample], split: str, n: int, seed: int) -> list[Sample]:
    """The test sample, or a dev sample drawn from the rows the test sample left out."""
    test = stratified_sample(samples, stratum, n if split == "test" else 150, seed)
    if split == "test":
        return test
    taken = {s.id for s in test}
    rest = [s for s in samples if s.id not in taken]
    return stratified_sample(rest, stratum, n, seed + 1)


# -- prompt variants tried while tuning (RESULTS-groundedness.md says what each did) --


class Contradict(Groundedness):
    """Asks the opposite question: does the claim go beyond or against the context?"""

    template_version = "groundedness-v1+contradict"
    question = (
        "Does the claim state anything that the context does not say, or contradict "
        "the context? Answer Yes or No."
    )

    def read_support(self, reply: JudgeReply, endpoint: str) -> float:
        return 1.0 - super().read_support(reply, endpoint)


class Covers(Groundedness):
    """The question spells out the check, with the rubric's polarity (Yes = grounded)."""

    template_version = "groundedness-v1+covers"
    question = (
        "Does the context say everything that the claim states, without the claim adding "
        "to it or contradicting it? Answer Yes or No."
    )


class FewShot(Groundedness):
    """The rubric with four worked examples (a longer, cached, shared prefix)."""

    template_version = "groundedness-v1+fewshot"
    rubric = Groundedness.rubric.replace(
        "Answer with a single word: Yes or No.",
        "Examples:\n"
        '- Context: "Water boils at 100 degrees Celsius at sea level." Claim: "At sea '
        'level, water boils at 100 C." Answer: Yes.\n'
        '- Context: "The museum opens at 9 am on weekdays." Claim: "The museum opens at '
        '10 am." Answer: No.\n'
        '- Context: "Ada Lovelace wrote notes on the Analytical Engine." Claim: "Ada '
        'Lovelace built the Analytical Engine." Answer: No.\n'
        '- Context: "The bridge is 2.7 km long and opened in 1937." Claim: "I love that '
        'bridge, it opened in 1937!" Answer: No.\n\n'
        "Answer with a single word: Yes or No.",
    )


VARIANTS: dict[str, Callable[..., Groundedness]] = {
    "final": Groundedness,
    "contradict": Contradict,
    "covers": Covers,
    "fewshot": FewShot,
}


# -- metrics ----------------------------------------------------------------------------


def least_p(score: Score) -> float:
    """The least P(Yes) over the claims (1.0 when there is none)."""
    claims = score.metadata.get("claims") or []
    return min((float(c["p_yes"]) for c in claims), default=1.0)


def mean_p(score: Score) -> float:
    """The mean P(Yes) over the claims (1.0 when there is none)."""
    value = score.metadata.get("mean_p_yes")
    return 1.0 if value is None else float(value)


def metrics(
    samples: Sequence[Sample], outcome: Outcome, *, with_auroc: bool = True
) -> dict[str, tuple[float, float, float]]:
    by_id = {s.id: s for s in samples}
    ok = [s for s in outcome.scores if s.status == "ok" and s.value is not None]
    truth = [float(by_id[s.sample_id].metadata["label"] == GROUNDED) for s in ok]
    passed = [float(bool(s.passed)) for s in ok]
    result = {"acc": bootstrap(accuracy, truth, passed)}
    if not with_auroc:
        return result
    result["F1(grounded)"] = bootstrap(f1, truth, passed)
    result["AUROC"] = bootstrap(auroc, truth, [float(s.value or 0.0) for s in ok])
    result["AUROC(mean P)"] = bootstrap(auroc, truth, [mean_p(s) for s in ok])
    result["AUROC(min P)"] = bootstrap(auroc, truth, [least_p(s) for s in ok])
    return result


def narrowed(outcome: Outcome, keep: set[str]) -> Outcome:
    scores = [s for s in outcome.scores if s.sample_id in keep]
    errors = sum(s.status == "error" for s in scores)
    return Outcome(scores=scores, seconds=outcome.seconds, calls=outcome.calls, errors=errors)


def main() -> None:
    p = parser(__doc__.splitlines()[1] if __doc__ else "", DEFAULT, 150)
    p.add_argument("--split", choices=("test", "dev"), default="test")
    p.add_argument("--variant", choices=sorted(VARIANTS), default="final")
    p.add_argument("--threshold", type=float, default=None, help="pass mark of the score")
    p.add_argument("--claim-cutoff", type=float, default=0.5, help="P(Yes) a claim needs")
    args = p.parse_args()
    samples = pick(load(args.data), args.split, args.n, args.seed)
    evaluator = VARIANTS[args.variant](threshold=args.threshold, claim_cutoff=args.claim_cutoff)
    outcome = run(evaluator, samples, args.judge, args.store)
    n = len(samples)
    print(
        f"BEGIN {args.split}: n={n}, seed={args.seed}, stratified by source and label; "
        f"variant {args.variant} ({evaluator.template_version}), threshold "
        f"{evaluator.threshold}, claim cut-off {evaluator.claim_cutoff}"
    )
    strata = Counter(stratum(s) for s in samples)
    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(strata.items())))
    print(report_row("groundedness / BEGIN", args.judge, outcome, metrics(samples, outcome), n))
    for source in SOURCES:
        part = [s for s in samples if s.cohort == source]
        sub = narrowed(outcome, {s.id for s in part})
        name = f"groundedness / BEGIN {source}"
        print(report_row(name, args.judge, sub, metrics(part, sub), len(part)))
    for label in sorted({str(s.metadata["label"]) for s in samples}):
        part = [s for s in samples if s.metadata["label"] == label]
        sub = narrowed(outcome, {s.id for s in part})
        name = f"groundedness / BEGIN label {label}"
        print(report_row(name, args.judge, sub, metrics(part, sub, with_auroc=False), len(part)))
    ok = [s for s in outcome.scores if s.status == "ok"]
    claims = sum(int(s.metadata.get("n_claims", 0)) for s in ok)
    skipped = Counter(k["kind"] for s in ok for k in s.metadata.get("skipped", []))
    no_claims = sum(1 for s in ok if not s.metadata.get("n_claims"))
    print(
        f"claims judged {claims} ({claims / max(1, len(ok)):.2f} per row), rows without "
        f"a claim {no_claims}, sentences skipped {dict(sorted(skipped.items()))}"
    )


if __name__ == "__main__":
    main()
