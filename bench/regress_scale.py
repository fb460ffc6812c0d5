#!/usr/bin/env python3
"""RegressionEval at scale: wall time and peak memory for many judge calls.

A sweep of C checkpoints x P prompts x E evaluators (one judge call per score) runs
through the real RegressionEval (outputs files, runner, SQLite store, analysis)
against the local OpenAI-protocol test server in its own process, at a fixed
latency. Each size runs in a fresh process so its peak RSS is its own::

    uv run python bench/regress_scale.py --calls 10000 --latency-ms 50
    uv run python bench/regress_scale.py --calls 100000 --latency-ms 50

Sizes: 10,000 calls = 10 checkpoints x 250 prompts x 4 evaluators; 100,000 calls =
20 checkpoints x 1,250 prompts x 4 evaluators (the issue's "20 checkpoints x 2,000
prompts x 5 evaluators" is 200,000 calls: twice the larger size).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import start_server

from heldout import Settings, Store
from heldout.config import EndpointSettings
from heldout.regress import RegressionEval, RegressionResult

SHAPES = {10_000: (10, 250, 4), 100_000: (20, 1_250, 4)}
COHORTS = ("helpfulness", "harmlessness", "honesty", "regression")


def write_sweep(folder: Path, calls: int, judge_url: str) -> Path:
    checkpoints, prompts, evaluators = SHAPES[calls]
    with (folder / "prompts.jsonl").open("w") as handle:
        for i in range(prompts):
            row = {"id": f"p{i}", "cohort": COHORTS[i % 4], "input": f"Question {i}?"}
            handle.write(json.dumps(row) + "\n")
    names = [f"step-{100 * c}" for c in range(checkpoints)]
    for c, name in enumerate(names):
        with (folder / f"{name}.jsonl").open("w") as handle:
            for i in range(prompts):
                handle.write(json.dumps({"id": f"p{i}", "output": f"Answer {i} by {c}."}) + "\n")
    lines = [
        "name: scale",
        "dataset: {path: prompts.jsonl}",
        f"eval_judge: openai:judge@{judge_url}",
        "evaluators:",
        *[
            f"  - {{type: criteria, criteria: 'Criterion {e}: the answer is right.', "
            f"options: {{name: c{e}}}}}"
            for e in range(evaluators)
        ],
        f"baseline: {names[0]}",
        "checkpoints:",
        *[
            f"  - {{name: {n}, outputs: {n}.jsonl, params: {{step: {100 * c}}}}}"
            for c, n in enumerate(names)
        ],
        "statistics: {n_resamples: 999}",
        "selection: {objective: {metrics: ['c*']}}",
    ]  # fmt: skip
    path = folder / "sweep.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


class RssSampler:
    """Samples this process's resident memory every 0.2 s, split at a phase mark."""

    def __init__(self) -> None:
        self.peak_by_phase: dict[str, float] = {}
        self.phase = "judging"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            rss = _rss_mb()
            self.peak_by_phase[self.phase] = max(self.peak_by_phase.get(self.phase, 0.0), rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, choices=sorted(SHAPES), default=10_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server, url = start_server(args.latency_ms, folder)
        try:
            sweep = write_sweep(folder, args.calls, url)
            settings = Settings(
                openai_api_key="sk-bench",
                db_url=f"sqlite:///{folder / 'heldout.db'}",
                endpoints={url: EndpointSettings(concurrency=args.concurrency)},
            )
            store = Store.open(settings.db_url)
            sampler = RssSampler()
            started = time.perf_counter()
            evaluation = RegressionEval(sweep, store=store, settings=settings)
            analyse = evaluation.analyse

            def mark_analysis(store: Store) -> RegressionResult:
                sampler.phase = "analysis"
                return analyse(store)

            evaluation.analyse = mark_analysis  # type: ignore[method-assign]
            result = evaluation.run()
            sampler.phase = "rerun"
            judged = time.perf_counter() - started
            analysed = time.perf_counter()
            evaluation.analyse(store)
            analysis_s = time.perf_counter() - analysed
            again = time.perf_counter()
            rerun = RegressionEval(sweep, store=store, settings=settings).run()
            rerun_s = time.perf_counter() - again
            store.close()
            sampler.stop()
        finally:
            server.terminate()
            server.wait(timeout=30)
    summary = result.summary
    if summary is None or summary.computed != args.calls or summary.errors:
        raise RuntimeError(f"the sweep did not score every row cleanly: {summary}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ideal = args.calls * args.latency_ms / 1000 / args.concurrency
    print(
        "| judge calls | latency ms | concurrency | wall s | ideal s | calls/s | of it analysis s "
        "| peak RSS MB judging | peak RSS MB analysis | rerun s | rerun calls | table rows |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.calls} | {args.latency_ms:g} | {args.concurrency} | {judged:.1f} | "
        f"{ideal:.1f} | {args.calls / judged:.0f} | {analysis_s:.1f} | "
        f"{sampler.peak_by_phase.get('judging', 0):.0f} | {peak_mb:.0f} | "
        f"{rerun_s:.1f} | {rerun.summary.judge_calls if rerun.summary else '-'} | "
        f"{len(result.table.rows)} |"
    )


if __name__ == "__main__":
    main()
