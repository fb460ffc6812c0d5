#!/usr/bin/env python3
"""The dashboard with 100,000 scored rows: how long each page takes, and trace ingest
into a deduplicated, capped cohort.

Seeds one store (SQLite by default, or ``--db-url`` for PostgreSQL), serves it with
the real app on 127.0.0.1 (uvicorn in a thread) and times every page over HTTP: the
first request (cold: nothing cached) and the median of ``--repeat`` more::

    uv run python bench/dashboard_scale.py
    uv run python bench/dashboard_scale.py --db-url postgresql+psycopg://USER:PW@HOST/DB

The store holds an eval run of ``--rows`` rows (one score each), a second judge's run
on the same rows (for the disagreement page), a regression sweep of 4 checkpoints x
2,500 prompts, 24 production runs of 250 rows (the over-time chart), and
``--traces`` traces ingested in requests of 500 into a cohort with near-duplicate
detection and a cap of 5,000 (every tenth input a near-duplicate of an earlier one).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx2 as httpx
from tests.support.live_server import LiveServer

from heldout import Sample, Score, Store
from heldout.config import ServerSettings
from heldout.tracing import CohortRules, SpanRecord, store_spans
from heldout.web import create_app

CHUNK = 20_000
RULES = CohortRules.model_validate(
    {"cohorts": [{"name": "support", "cap": 5000, "dedup": {"similarity": 0.9}}]}
)
# Words without digits: normalising turns every number into 0.
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
VOCABULARY = [a + b for a in SYLLABLES for b in SYLLABLES]


def score(sample: Sample, passed: bool, evaluator: str, judge: str) -> Score:
    return Score(
        sample_id=sample.id,
        cohort=sample.cohort,
        evaluator=evaluator,
        status="ok",
        value=float(passed),
        passed=passed,
        reason="r",
        judge=judge,
        template_version="t",
    )


def seed_run(
    store: Store,
    run_id: str,
    n: int,
    fails: Callable[[int], bool],
    *,
    judge: str = "openai:j1",
    kind: str = "eval",
    config: dict[str, object] | None = None,
    checkpoint: str | None = None,
    begin: bool = True,
) -> None:
    if begin:
        store.begin_run(run_id, name=run_id, kind=kind, config=config or {})
    for start in range(0, n, CHUNK):
        chunk = [
            Sample(id=f"r{i:06d}", cohort=f"c{i % 5}", input=f"question {i}", output=f"answer {i}")
            for i in range(start, min(n, start + CHUNK))
        ]
        store.put_samples(run_id, chunk, checkpoint=checkpoint)
        store.write_scores(
            run_id,
            [score(s, not fails(i), "criteria", judge) for i, s in enumerate(chunk, start)],
            checkpoint=checkpoint,
        )


def seed_regress(store: Store) -> None:
    sweep = {
        "name": "sweep",
        "dataset": {"path": "prompts.jsonl"},
        "evaluators": [{"type": "criteria", "criteria": "correct"}],
        "baseline": "cp0",
        "checkpoints": [{"name": f"cp{c}", "outputs": f"cp{c}.jsonl"} for c in range(4)],
        "selection": {"objective": {"metrics": ["criteria"]}},
        "statistics": {"n_resamples": 999},
    }
    store.begin_run("regress", name="sweep", kind="regress", config={"sweep": sweep})
    for c in range(4):
        seed_run(
            store,
            "regress",
            2_500,
            lambda i, c=c: i % (2 + c) == 0,
            checkpoint=f"cp{c}",
            begin=False,
        )
    store.finish_run("regress", "done")


def text(i: int) -> str:
    """Twenty-two words drawn for ``i``; every tenth input repeats an earlier one but for
    one word (word-set Jaccard 21/23 = 0.91: a near-duplicate at 0.9)."""
    base = i - 7 if i % 10 == 9 else i
    words = random.Random(base).sample(VOCABULARY, 22)
    if base != i:
        words[5] = "quickly"
    return " ".join(words)


def ingest(store: Store, n: int) -> list[tuple[int, float]]:
    """Ingest ``n`` one-span traces in requests of 500; seconds per request."""
    now = datetime.now(UTC)
    timings = []
    for start in range(0, n, 500):
        spans = [
            SpanRecord(
                trace_id=f"{i + 1:032x}",
                span_id=f"{i + 1:016x}",
                name="turn",
                start_time=now - timedelta(seconds=n - i),
                end_time=now - timedelta(seconds=n - i - 1),
                attributes={
                    "openinference.span.kind": "CHAIN",
                    "input.value": text(i),
                    "output.value": "ok",
                },
            )
            for i in range(start, min(n, start + 500))
        ]
        began = time.perf_counter()
        store_spans(store, spans, RULES)
        timings.append((start + len(spans), time.perf_counter() - began))
    return timings


def time_pages(base: str, pages: list[str], repeat: int) -> list[tuple[str, float, float]]:
    out = []
    with httpx.Client(base_url=base, timeout=300) as client:
        for path in pages:
            began = time.perf_counter()
            response = client.get(path)
            cold = time.perf_counter() - began
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
            warm = []
            for _ in range(repeat):
                began = time.perf_counter()
                client.get(path).raise_for_status()
                warm.append(time.perf_counter() - began)
            out.append((path, cold * 1000, statistics.median(warm) * 1000))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db-url", default=None, help="default: SQLite in a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.db_url or f"sqlite:///{Path(folder) / 'heldout.db'}"
        store = Store.open(url)
        began = time.perf_counter()
        seed_run(store, "big", args.rows, lambda i: i % 3 == 0)
        store.finish_run("big", "done")
        seed_run(store, "big-j2", args.rows, lambda i: i % 4 == 0, judge="openai:j2")
        store.finish_run("big-j2", "done")
        seed_regress(store)
        for r in range(24):
            run_id = f"production-support-{r:02d}"
            seed_run(store, run_id, 250, lambda i, r=r: (i + r) % 5 == 0, kind="production")
            store.finish_run(run_id, "done")
        seeded = time.perf_counter() - began
        ingested = ingest(store, args.traces)
        last = f"r{args.rows - 1:06d}"
        trace_id = f"{args.traces:032x}"
        pages = [
            "/",
            "/runs",
            "/runs/big",
            f"/runs/big?after=r{int(args.rows * 0.9):06d}",
            f"/runs/big?failed=true&cohort=c3&after=r{args.rows // 2:06d}",
            f"/runs/big/rows/{last}",
            "/runs/big/spotcheck",
            "/runs/regress/compare",
            "/agreement?run=big&run=big-j2",
            "/cohorts/support",
            f"/traces/{trace_id}",
        ]
        app = create_app(store, ServerSettings(token="bench-token-0123456789"), rules=RULES)
        with LiveServer(app) as live:
            timings = time_pages(live.base_url, pages, args.repeat)
        scores = store.transaction(
            "count", lambda c: c.exec_driver_sql("SELECT count(*) FROM scores").scalar()
        )
        members = store.transaction(
            "count", lambda c: c.exec_driver_sql("SELECT count(*) FROM cohort_members").scalar()
        )
        store.close()
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"{backend}: {scores:,} scores; seeded in {seeded:.0f} s")
    print()
    print("| page | first request ms | median of the next ms |")
    print("|---|---|---|")
    for path, cold, warm in timings:
        print(f"| `{path}` | {cold:.0f} | {warm:.0f} |")
    print()
    firsts = [t for _, t in ingested[:4]]
    lasts = [t for _, t in ingested[-4:]]
    print(
        f"Ingest of {args.traces:,} traces in requests of 500 into a cohort with dedup 0.9 "
        f"and cap 5,000 ({members:,} members at the end): first requests "
        f"{statistics.median(firsts) * 1000:.0f} ms, last "
        f"{statistics.median(lasts) * 1000:.0f} ms (median of 4 each)."
    )


if __name__ == "__main__":
    main()
