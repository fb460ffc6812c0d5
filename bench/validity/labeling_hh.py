#!/usr/bin/env python3
"""RLAIF labeling against people: does the constitutional labeler pick hh-rlhf's choice?

The same seeded hh-rlhf harmless sample as ``pairwise.py --set hh`` (the shared dialogue
is the prompt, the two last assistant turns the candidates, put in A or B by a seeded
coin) is labeled by the shipped labeler: :class:`heldout.labeling.ConstitutionalPreference`
with the default constitution, one seeded principle per comparison, both orders
averaged, through the real runner and store (replies cached, so a rerun is free).

Reported with 95% bootstrap intervals over pairs: agreement with the crowdworkers'
choice from the order asked first alone and from both orders averaged (a tie counts
half); position consistency; and, for minimum margins 0.05, 0.1 and 0.2, the share of
pairs kept and the agreement on them. Run ``pairwise.py --set hh`` on the same sample
for the labeler without a constitution::

    uv run python bench/validity/labeling_hh.py --n 60
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import SHARED_DATA, bootstrap, parser
from pairwise import agreement, load, sample

from heldout import Store, load_settings
from heldout.labeling import Candidates, ConstitutionalPreference, label_preferences

DATA = SHARED_DATA / "pairwise" / "hh_rlhf_harmless_test.jsonl.gz"
DEFAULT_STORE = Path("/tmp/heldout-validity/labeling.db")
MARGINS = (0.05, 0.1, 0.2)


def main() -> None:
    p = parser(__doc__.splitlines()[1] if __doc__ else "", DATA, 60)
    p.set_defaults(store=DEFAULT_STORE)
    p.add_argument("--principle", choices=("random", "all"), default="random")
    args = p.parse_args()
    pairs = sample(load("hh", args.data, args.seed), "hh", "test", args.n, args.seed)
    # One candidate row per pair, responses in the pair's A/B order: the label of the
    # row's only comparison "0-1" is then P(A better).
    rows = [Candidates(id=pair.id, prompt=pair.input, responses=[pair.output_a, pair.output_b])
            for pair in pairs]  # fmt: skip
    truth = {pair.id: float(pair.metadata["label"]) for pair in pairs}
    labeler = ConstitutionalPreference(principle=args.principle, seed=args.seed, judge=args.judge)
    args.store.parent.mkdir(parents=True, exist_ok=True)
    store = Store.open(f"sqlite:///{args.store}")
    started = time.perf_counter()
    try:
        labels = asyncio.run(
            label_preferences(rows, labeler, store=store, settings=load_settings(), min_margin=0)
        )
        scores = {s.sample_id: s for s in store.scores(labels.run_id)}
    finally:
        store.close()
    seconds = time.perf_counter() - started
    ids = [f"{pair.id}:0-1" for pair in pairs if scores.get(f"{pair.id}:0-1") is not None
           and scores[f"{pair.id}:0-1"].status == "ok"]  # fmt: skip
    if len(ids) < 2:
        errors = "; ".join(list(labels.errors.values())[:3])
        raise SystemExit(f"only {len(ids)} pairs labeled; errors: {errors}")
    t = np.array([truth[i.split(":")[0]] for i in ids])
    both = np.array([float(scores[i].value or 0.0) for i in ids])
    single = np.array([scores[i].metadata["preferences"][0]["orders"][0]["p_a"] for i in ids])
    consistent = np.array([float(bool(scores[i].metadata["preferences"][0]["consistent"]))
                           for i in ids])  # fmt: skip
    print(f"### hh-rlhf harmless, labeling: n={len(ids)} ok of {len(pairs)}, seed={args.seed}, "
          f"principle {args.principle}, judge {args.judge}")  # fmt: skip
    print(f"- agreement, single order: {_ci(agreement, t, single)}")
    print(f"- agreement, both orders (shipped): {_ci(agreement, t, both)}")
    print(f"- position consistency: {consistent.mean():.3f}")
    for margin in MARGINS:
        kept = np.abs(both - 0.5) >= margin
        if kept.any():
            print(f"- min margin {margin}: keeps {kept.mean():.0%} ({kept.sum()}), agreement "
                  f"{_ci(agreement, t[kept], both[kept])}")  # fmt: skip
    calls = sum(s.calls for s in scores.values())
    print(f"- errors {len(labels.errors)}; judge calls {calls}; {seconds:.0f} s")


def _ci(metric: Callable[[np.ndarray, np.ndarray], float], t: np.ndarray, p: np.ndarray) -> str:
    point, low, high = bootstrap(metric, list(t), list(p))
    return f"{point:.3f} [{low:.3f}, {high:.3f}]"


if __name__ == "__main__":
    main()
