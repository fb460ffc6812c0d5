#!/usr/bin/env python3
"""Pairwise judging against human and gold preferences: LLMBar, MT-Bench, hh-rlhf.

Every pair is judged in both orders by :class:`heldout.evaluators.PairwiseJudge` (the
order asked first is drawn by a seeded RNG per pair). Reported, each with a 95%
bootstrap interval over pairs:

- agreement with the labels from the order asked first alone ("single order"), from
  that order with the judge's first-position prior subtracted ("single, calibrated":
  the prior is the mean log-odds of the first position over this run, one number), and
  from both orders averaged ("both orders", the shipped verdict; a tie scores 0.5);
- position consistency (same winner in both orders) and the share of orders won by
  the first position shown;
- length bias: the slope of P(A) on ``len(A) - len(B)`` per 100 characters, and of the
  judge's excess over the label (judge minus people), with Spearman's rho;
- agreement and coverage when pairs within a tie margin are left undecided.

Sets (``--set``), with the sample the README reports:

- ``llmbar``: LLMBar Natural, all 100 pairs, gold labels;
- ``mtbench``: MT-Bench human judgments, a seeded 100 of 200 (ties already removed);
- ``hh``: Anthropic hh-rlhf harmless-base test, a seeded 100 of 2,312. Each row's two
  dialogues share every turn but the last; that shared part is the input and the two
  last assistant turns are the responses, put in A or B by a seeded coin.

``--split dev`` draws a disjoint sample of the rows the test sample left out (not for
llmbar, which has none); prompts were tuned on it. ``--first K`` judges only the
first K pairs of the sample, to split a long run: the store caches every reply, so the
full command afterwards pays only for the rest. The texts are never printed.

    uv run python bench/validity/pairwise.py --set llmbar                  # ~10 min
    uv run python bench/validity/pairwise.py --set mtbench --first 50      # ~20 min
    uv run python bench/validity/pairwise.py --set hh --split dev --n 30 --variant plain
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from common import SHARED_DATA, auroc, bootstrap, parser
from pairwise_variants import VARIANTS

from heldout import Store, load_settings
from heldout.analysis._bias import calibrated_p_a, length_bias, position_bias
from heldout.evaluators._pairwise import Pair, PairwiseJudge, Preference
from heldout.judges import JudgeClient, make_judge

SETS = {
    "llmbar": SHARED_DATA / "pairwise" / "LLMBar_Natural.json",
    "mtbench": SHARED_DATA / "pairwise" / "Processed_MTBench_human.json",
    "hh": SHARED_DATA / "pairwise" / "hh_rlhf_harmless_test.jsonl.gz",
}
DEFAULT_STORE = Path("/tmp/heldout-validity/pairwise.db")
TIE_MARGINS = (0.01, 0.02, 0.05, 0.1)


# -- loading ---------------------------------------------------------------------------


def load(name: str, path: Path, seed: int) -> list[Pair]:
    """The set's rows as pairs; ``metadata["label"]`` is 1.0 when A is better, else 0.0."""
    if name == "hh":
        return _load_hh(path, seed)
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [
        Pair(
            id=f"{name}-{i}",
            input=row["input"],
            output_a=row["output_1"],
            output_b=row["output_2"],
            metadata={"label": 1.0 if int(row["label"]) == 1 else 0.0},
        )
        for i, row in enumerate(rows)
    ]


def _load_hh(path: Path, seed: int) -> list[Pair]:
    """hh-rlhf rows whose two dialogues differ only in the last assistant turn."""
    marker = "\n\nAssistant:"
    coin = random.Random(seed)
    pairs = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            row = json.loads(line)
            head_c, _, chosen = row["chosen"].rpartition(marker)
            head_r, _, rejected = row["rejected"].rpartition(marker)
            chosen_first = coin.random() < 0.5  # drawn for every row: stable ids
            if not head_c or head_c != head_r or chosen.strip() == rejected.strip():
                continue
            a, b = (chosen, rejected) if chosen_first else (rejected, chosen)
            pairs.append(
                Pair(
                    id=f"hh-{i}",
                    input=head_c.strip().replace("Human:", "User:"),
                    output_a=a.strip(),
                    output_b=b.strip(),
                    metadata={"label": 1.0 if chosen_first else 0.0},
                )
            )
    return pairs


def sample(pairs: list[Pair], name: str, split: str, n: int, seed: int) -> list[Pair]:
    """The seeded test sample (all of LLMBar), or a dev sample of the other rows."""
    if name == "llmbar":
        if split == "dev":
            raise SystemExit("LLMBar Natural has no rows to spare for a dev split")
        return pairs if n <= 0 else random.Random(seed).sample(pairs, min(n, len(pairs)))
    test = random.Random(seed).sample(pairs, 100)
    if split == "test":
        return test[: n if n > 0 else 100]
    taken = {p.id for p in test}
    rest = [p for p in pairs if p.id not in taken]
    return random.Random(seed + 1).sample(rest, min(n if n > 0 else 30, len(rest)))


def clip(pair: Pair, max_chars: int) -> Pair:
    """Each response cut to ``max_chars`` (head and tail kept), to bound a call's time."""

    def cut(text: str) -> str:
        if len(text) <= max_chars:
            return text
        head = max_chars * 3 // 4
        return f"{text[:head]}\n[...]\n{text[len(text) - (max_chars - head) :]}"

    return pair.model_copy(update={"output_a": cut(pair.output_a), "output_b": cut(pair.output_b)})


# -- metrics ---------------------------------------------------------------------------


def agreement(t: np.ndarray, p: np.ndarray) -> float:
    """Share of pairs where P(A) > 0.5 matches the label; exactly 0.5 counts half."""
    credit = np.where(p == 0.5, 0.5, ((p > 0.5) == (t > 0.5)).astype(float))
    return float(np.mean(credit))


def _ci(metric: Callable[[np.ndarray, np.ndarray], float], t: list[float], p: list[float]) -> str:
    value, low, high = bootstrap(metric, t, p)
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def report(prefs: Sequence[Preference], labels: Sequence[float], tie_margin: float) -> list[str]:
    """The markdown lines of one run's metrics."""
    ok = [(p, y) for p, y in zip(prefs, labels, strict=True) if p.status == "ok"]
    t = [y for _, y in ok]
    single = [p.orders[0].p_a for p, _ in ok]
    both = [0.5 if p.verdict == "tie" else float(p.p_a or 0.0) for p, _ in ok]
    bias = position_bias(prefs)
    lines = [f"- ok pairs {len(ok)}, errors {len(prefs) - len(ok)}"]
    if bias is None:
        return lines
    calibrated = [calibrated_p_a(p, bias.first_log_odds) for p, _ in ok]
    lines += [
        f"- agreement, single order: {_ci(agreement, t, single)}",
        f"- agreement, single order calibrated: {_ci(agreement, t, calibrated)} "
        f"(first-position prior {bias.first_log_odds:+.2f} log-odds)",
        f"- agreement, both orders (tie margin {tie_margin}): {_ci(agreement, t, both)}",
        f"- AUROC of P(A), both orders: {_ci(auroc, t, both)}",
        f"- position consistency: {_interval(bias.consistency)}",
        f"- first position won: {_interval(bias.first_wins)} "
        f"(mean P(first) {bias.mean_p_first:.3f})",
    ]
    for target, given in (("P(A)", None), ("judge - label", labels)):
        lb = length_bias(prefs, labels=given)
        if lb is not None:
            lines.append(
                f"- length slope of {target} per 100 chars: {lb.slope:+.4f} "
                f"[{lb.slope_low:+.4f}, {lb.slope_high:+.4f}], Spearman {lb.spearman:+.3f} "
                f"[{lb.spearman_low:+.3f}, {lb.spearman_high:+.3f}]"
            )
    label_a = sum(t) / len(t)
    lines.append(f"- labels: A better in {label_a:.2f} of pairs")
    for margin in TIE_MARGINS:
        decided = [(y, p.p_a or 0.0) for p, y in ok if abs((p.p_a or 0.0) - 0.5) > margin]
        if decided:
            hits = np.mean([(pa > 0.5) == (y > 0.5) for y, pa in decided])
            lines.append(
                f"- tie margin {margin}: decided {len(decided)}/{len(ok)}, "
                f"agreement on decided {hits:.3f}"
            )
    return lines


def _interval(mi: object) -> str:
    return f"{mi.mean:.3f} [{mi.low:.3f}, {mi.high:.3f}]"  # type: ignore[attr-defined]


# -- running ---------------------------------------------------------------------------


async def judge_all(
    judge: PairwiseJudge, pairs: Sequence[Pair], spec: str, store_path: Path
) -> tuple[list[Preference], float, int, int]:
    """Preferences for ``pairs``, replies cached in the store; seconds, calls, cache hits."""
    store_path.parent.mkdir(parents=True, exist_ok=True)
    store = Store.open(f"sqlite:///{store_path}")
    settings = load_settings()
    client = JudgeClient(make_judge(spec, settings), settings=settings, cache=store)
    started = time.perf_counter()
    try:
        # One pair in flight: a local judge then reads a pair's two orders back to back.
        prefs = await judge.preferences(pairs, client, max_in_flight=1)
    finally:
        await client.aclose()
        store.close()
    return prefs, time.perf_counter() - started, client.stats.calls, client.stats.cache_hits


def main() -> None:
    p = parser(__doc__.splitlines()[1] if __doc__ else "", Path(), 100)
    p.set_defaults(store=DEFAULT_STORE)
    p.add_argument("--set", dest="set_name", choices=sorted(SETS), required=True)
    p.add_argument("--split", choices=("test", "dev"), default="test")
    p.add_argument("--variant", choices=sorted(VARIANTS), default="final")
    p.add_argument("--first", type=int, default=0, help="judge only the first K pairs")
    p.add_argument("--max-chars", type=int, default=0, help="clip responses (0 = never)")
    p.add_argument("--tie-margin", type=float, default=0.0)
    p.add_argument("--dump", type=Path, help="write the preferences (no texts) as JSONL")
    args = p.parse_args()
    path = args.data if str(args.data) not in ("", ".") else SETS[args.set_name]
    pairs = load(args.set_name, path, args.seed)
    pairs = sample(pairs, args.set_name, args.split, args.n, args.seed)
    if args.first > 0:
        pairs = pairs[: args.first]
    if args.max_chars > 0:
        pairs = [clip(pair, args.max_chars) for pair in pairs]
    judge = VARIANTS[args.variant](args.set_name, tie_margin=args.tie_margin, seed=args.seed)
    prefs, seconds, calls, hits = asyncio.run(judge_all(judge, pairs, args.judge, args.store))
    labels = [float(pair.metadata["label"]) for pair in pairs]
    print(
        f"### {args.set_name} {args.split}: n={len(pairs)}, seed={args.seed}, variant "
        f"{args.variant} ({judge.template_version}), judge {args.judge}"
        + (f", responses clipped to {args.max_chars} chars" if args.max_chars else "")
    )
    print("\n".join(report(prefs, labels, args.tie_margin)))
    per = seconds / max(1, calls)
    print(f"- judge calls {calls} (+{hits} cached), {seconds:.0f} s ({per:.1f} s/call)")
    if args.dump:
        with args.dump.open("w", encoding="utf-8") as f:
            for pref, y in zip(prefs, labels, strict=True):
                f.write(json.dumps({**pref.model_dump(mode="json"), "label": y}) + "\n")


if __name__ == "__main__":
    main()
