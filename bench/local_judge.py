#!/usr/bin/env python3
"""Seconds per judgment of the embedded judge, with and without the prefix cache.

Ten choice-mode judgments (Yes/No: is the claim supported by the context?) share a
~300-token rubric as their system message, as an evaluator's prompts do. Each setting
gets a fresh judge; the model is loaded by a warm-up call that shares nothing with the
rubric, so the timings are of judging only. Prints a markdown table::

    uv run python bench/local_judge.py            # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from heldout.config import LocalSettings, Settings
from heldout.judges._local import LocalJudge
from heldout.judges._types import JudgeRequest, Message

RUBRIC = """You are a careful, strict fact-checking judge for a retrieval-augmented \
question-answering system. Each time you receive a context passage and a claim that a \
model wrote after reading the context. Decide whether the context supports the claim.

Rules:
1. A claim is supported only if every fact in it is stated in the context or follows \
from it directly, without outside knowledge.
2. A claim that contradicts the context is not supported, even if it is plausible or \
true in the real world.
3. A claim that adds facts the context does not mention is not supported.
4. Numbers, dates, names, quantities and places must match the context exactly.
5. Paraphrases are fine: the same fact in other words is supported.
6. Ignore style, grammar, spelling and tone; judge only the facts.
7. If the context is ambiguous about the claim, answer No.

Examples:
- Context: "Water boils at 100 degrees Celsius at sea level." Claim: "At sea level, \
water boils at 100 C." Answer: Yes.
- Context: "The museum opens at 9 am on weekdays." Claim: "The museum opens at 10 am." \
Answer: No.
- Context: "Ada Lovelace wrote notes on the Analytical Engine." Claim: "Ada Lovelace \
built the Analytical Engine." Answer: No.
- Context: "The bridge is 2.7 km long and opened in 1937." Claim: "The bridge opened \
in 1937." Answer: Yes.

Answer with exactly one word: Yes or No."""

CASES = [
    ("The Eiffel Tower is in Paris and was completed in 1889.", "It is in Paris.", "Yes"),
    ("The Eiffel Tower is in Paris and was completed in 1889.", "It is in Rome.", "No"),
    ("Marie Curie won Nobel Prizes in physics and chemistry.", "She won two Nobels.", "Yes"),
    ("Marie Curie won Nobel Prizes in physics and chemistry.", "She won one in biology.", "No"),
    ("The Nile flows north into the Mediterranean Sea.", "The Nile flows north.", "Yes"),
    ("The Nile flows north into the Mediterranean Sea.", "It ends in the Red Sea.", "No"),
    ("Python 3.11 was released in October 2022.", "It came out in 2022.", "Yes"),
    ("Python 3.11 was released in October 2022.", "It came out in 2019.", "No"),
    ("The recipe needs 200 g of flour and two eggs.", "It uses two eggs.", "Yes"),
    ("The recipe needs 200 g of flour and two eggs.", "It needs 500 g of flour.", "No"),
]


def request(context: str, claim: str) -> JudgeRequest:
    user = f"Context: {context}\nClaim: {claim}\nIs the claim supported? Answer Yes or No."
    return JudgeRequest(
        messages=(Message(role="system", content=RUBRIC), Message(role="user", content=user)),
        mode="choice",
        choices=("Yes", "No"),
    )


async def measure(prefix_cache: bool, settings: Settings) -> dict[str, float]:
    judge = LocalJudge("qwen2.5-1.5b", settings=settings, prefix_cache=prefix_cache)
    warm_up = JudgeRequest(
        messages=(Message(role="user", content="Hi"),), mode="choice", choices=("Yes", "No")
    )
    await judge.generate(warm_up, timeout=600)  # loads the model
    before = judge.stats
    seconds: list[float] = []
    correct = 0
    for context, claim, expected in CASES:
        started = time.perf_counter()
        reply = await judge.generate(request(context, claim), timeout=600)
        seconds.append(time.perf_counter() - started)
        correct += reply.text == expected
    after = judge.stats
    await judge.aclose()
    return {
        "median": statistics.median(seconds),
        "mean": statistics.fmean(seconds),
        "first": seconds[0],
        "prompt": after.prompt_tokens - before.prompt_tokens,
        "evaluated": after.evaluated_tokens - before.evaluated_tokens,
        "reused": after.reused_tokens - before.reused_tokens,
        "correct": correct,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-threads", type=int, default=None, help="CPU threads (all)")
    args = parser.parse_args()
    settings = Settings(local=LocalSettings(n_threads=args.n_threads))
    rows = {cache: asyncio.run(measure(cache, settings)) for cache in (False, True)}
    print(f"{len(CASES)} choice judgments sharing a rubric prefix (local:qwen2.5-1.5b)\n")
    print(
        "| prefix cache | median s/judgment | mean s/judgment | first judgment s "
        "| prompt tokens | evaluated | reused | verdicts as expected |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for cache, r in rows.items():
        print(
            f"| {'on' if cache else 'off'} | {r['median']:.2f} | {r['mean']:.2f} "
            f"| {r['first']:.2f} | {r['prompt']:.0f} | {r['evaluated']:.0f} "
            f"| {r['reused']:.0f} | {r['correct']:.0f}/{len(CASES)} |"
        )
    off, on = rows[False]["median"], rows[True]["median"]
    print(f"\nSpeed-up of the median judgment: {off / on:.1f}x")


if __name__ == "__main__":
    main()
