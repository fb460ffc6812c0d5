#!/usr/bin/env python3
"""The local backend against the Ray backend, and the figures of the scale-out model.

Both backends judge the same N rows (one judge call each, ``Criteria`` with a JSON
schema) against the OpenAI-protocol test server in its own process at a fixed latency,
into PostgreSQL (a fresh schema each). The Ray backend runs on a single-node Ray started
here with the machine's CPUs. Then three figures the model in bench/README.md rests on:

- the store's write ceiling: scores per second PostgreSQL commits in group commits of
  500, from one writer and from two at once;
- one lease actor's ceiling: acquire/release pairs per second an endpoint's actor grants;
- the cost of a shard: the Ray backend at 0 ms latency with small and large shards.

::

    eval "$(bash scripts/postgres.sh | tail -1)"
    uv run python bench/ray_scale.py --n 10000 --latency-ms 50 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.postgres import pg_schema
from throughput import rows, start_server

from heldout import Criteria, Score, Settings, Store, run_evaluation
from heldout.config import EndpointSettings, RaySettings


class TreeRss:
    """Peak resident memory of this process alone and of it with every descendant (Ray's
    raylet, GCS and workers, when Ray was started here), sampled every 0.2 s."""

    def __init__(self) -> None:
        self.driver_mb = 0.0
        self.tree_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            own = _rss_mb(os.getpid())
            self.driver_mb = max(self.driver_mb, own)
            self.tree_mb = max(self.tree_mb, own + sum(_rss_mb(p) for p in _descendants()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _descendants() -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@contextmanager
def fresh_store(base_url: str) -> Iterator[str]:
    with pg_schema(base_url) as url:
        yield url


def judge_run(
    backend: str, n: int, base_url: str, judge_url: str, concurrency: int, **ray: Any
) -> dict[str, float]:
    with fresh_store(base_url) as db:
        settings = Settings(
            openai_api_key="sk-bench",
            db_url=db,
            backend="ray" if backend == "ray" else "local",
            endpoints={judge_url: EndpointSettings(concurrency=concurrency)},
            ray=RaySettings(**ray),
        )
        store = Store.open(db)
        evaluator = Criteria("The output agrees with the reference.", method="structured")
        rss = TreeRss()
        started, cpu = time.perf_counter(), time.process_time()
        summary = asyncio.run(
            run_evaluation(rows(n), [evaluator], store=store, settings=settings,
                           judge=f"openai:gpt-4o-mini@{judge_url}", workers=2 * concurrency)
        )  # fmt: skip
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        rss.stop()
        store.close()
    if summary.computed != n or summary.errors:
        raise RuntimeError(f"the run did not score every row cleanly: {summary}")
    return {"wall_s": wall, "calls_s": n / wall, "driver_mb": rss.driver_mb,
            "tree_mb": rss.tree_mb, "driver_cpu_ms": 1000 * cpu / n}  # fmt: skip


def store_write_rate(base_url: str, n: int, writers: int) -> float:
    """Scores per second committed to PostgreSQL in transactions of 500, by ``writers``
    threads each with its own store (as shard workers have)."""
    with fresh_store(base_url) as db:
        stores = [Store.open(db) for _ in range(writers)]
        stores[0].begin_run("w", name="w", kind="eval", config={})
        per = n // writers

        def write(k: int) -> None:
            scores = [
                Score(sample_id=f"{k}-{i}", cohort="c", evaluator="e", status="ok", value=1.0,
                      passed=True, reason="The output agrees with the reference.")
                for i in range(per)
            ]  # fmt: skip
            for start in range(0, per, 500):
                stores[k].write_batch([], [("w", s, None) for s in scores[start : start + 500]])

        threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        for store in stores:
            store.close()
    return per * writers / wall


def lease_rate(n: int, in_flight: int, reuse_s: float) -> float:
    """Slots per second one endpoint's lease actor and a limiter give one process's
    calls; ``reuse_s=0`` asks the actor for every call (its raw ceiling)."""
    from heldout.runner._leases import EndpointLeases, RayLimiter
    from heldout.runner._ray import ray

    actor = ray.remote(EndpointLeases).options(num_cpus=0).remote("bench", in_flight, 600.0)
    limiter = RayLimiter({"bench": actor}, "bench:0/a", reuse_s=reuse_s)

    async def run() -> float:
        gate = asyncio.Semaphore(in_flight)

        async def one() -> None:
            async with gate, limiter.slot("bench", in_flight):
                pass

        await one()  # warm up
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        await limiter.aclose()
        return n / (time.perf_counter() - started)

    rate = asyncio.run(run())
    ray.kill(actor)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--shard-size", type=int, default=500)
    args = parser.parse_args()
    base_url = os.environ.get("HELDOUT_TEST_PG_URL")
    if not base_url:
        raise SystemExit('start PostgreSQL first: eval "$(bash scripts/postgres.sh | tail -1)"')
    from heldout.runner._ray import ray  # heldout sets how Ray starts workers first

    ray.init(include_dashboard=False, object_store_memory=200 * 1024 * 1024, log_to_driver=False)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "fast").mkdir()
        server, url = start_server(args.latency_ms, Path(tmp))
        try:
            fast, fast_url = start_server(0.0, Path(tmp) / "fast")
        except BaseException:
            server.terminate()
            raise
        try:
            judge_run("ray", 500, base_url, url, args.concurrency, shard_size=100)  # warm up
            print(f"{args.n} judge calls at {args.latency_ms:g} ms, endpoint concurrency "
                  f"{args.concurrency}, Ray on this machine with {cpus} CPUs\n")  # fmt: skip
            print("| backend | shard size | wall s | ideal s | calls/s | driver CPU ms/call | "
                  "peak RSS MB driver | peak RSS MB with Ray's processes |\n"
                  + "|---" * 8 + "|")  # fmt: skip
            ideal = args.n * args.latency_ms / 1000 / args.concurrency
            for backend in ("local", "ray"):
                m = judge_run(backend, args.n, base_url, url, args.concurrency,
                              shard_size=args.shard_size)  # fmt: skip
                size = args.shard_size if backend == "ray" else "-"
                cells = [
                    backend,
                    size,
                    f"{m['wall_s']:.1f}",
                    f"{ideal:.1f}",
                    f"{m['calls_s']:.0f}",
                    f"{m['driver_cpu_ms']:.2f}",
                    f"{m['driver_mb']:.0f}",
                    f"{m['tree_mb']:.0f}",
                ]
                print("| " + " | ".join(str(c) for c in cells) + " |")  # fmt: skip

            print("\nShard cost: Ray backend, 2,000 calls at 0 ms, concurrency 64\n")
            print("| shard size | shards | wall s | calls/s |\n|---|---|---|---|")
            for size in (50, 1000):
                m = judge_run("ray", 2000, base_url, fast_url, 64, shard_size=size)
                print(f"| {size} | {2000 // size} | {m['wall_s']:.2f} | {m['calls_s']:.0f} |")

            print("\nCeilings\n\n| what | rate per second |\n|---|---|")
            for writers in (1, 2):
                rate = store_write_rate(base_url, 20_000, writers)
                print(f"| PostgreSQL score writes, {writers} writer(s), 500 per commit | "
                      f"{rate:,.0f} |")  # fmt: skip
            for reuse_s, how in ((0.0, "asked for every call"), (5.0, "leases reused (default)")):
                rate = lease_rate(5000, 64, reuse_s)
                print(f"| slots from one endpoint's lease actor, 64 in flight, {how} | "
                      f"{rate:,.0f} |")  # fmt: skip
        finally:
            for proc in (server, fast):
                proc.terminate()
                proc.wait(timeout=30)
    ray.shutdown()


if __name__ == "__main__":
    main()
