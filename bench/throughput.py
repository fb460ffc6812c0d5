#!/usr/bin/env python3
"""Runner throughput against a local OpenAI-protocol server, and heldout's CPU per row.

The server (tests/support/openai_server.py) runs in its own process with a fixed
latency. Each row is one judge call through the real runner, JudgeClient and SQLite
store, next to the floor: the bare openai SDK with a semaphore sending the same
request. Reported per setting: wall time and the client process's CPU time per row
for both (the server's CPU is in neither), and their difference, heldout's own CPU
per row on top of the HTTP client it uses; then the peak RSS::

    uv run python bench/throughput.py --n 2000 --latency-ms 0 --concurrency 16,64
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import heldout.judges._openai  # noqa: F401  # import the SDK before any timer
from heldout import Criteria, Sample, Settings, Store, run_evaluation
from heldout.config import EndpointSettings

ROOT = Path(__file__).resolve().parents[1]


def start_server(latency_ms: float, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = folder / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.openai_server", "--latency-ms", str(latency_ms),
         "--port-file", str(port_file)],
        cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port_file.read_text().strip()}/v1"


def rows(n: int) -> list[Sample]:
    return [
        Sample(id=f"r{i}", cohort=f"c{i % 4}", input=f"What is {i} squared?",
               output=f"{i} squared is {i * i}.", reference=str(i * i))
        for i in range(n)
    ]  # fmt: skip


def measure(n: int, base_url: str, concurrency: int, folder: Path) -> dict[str, float]:
    settings = Settings(
        openai_api_key="sk-bench",
        db_url=f"sqlite:///{folder / f'store-{concurrency}-{time.time_ns()}.db'}",
        endpoints={base_url: EndpointSettings(concurrency=concurrency)},
    )
    store = Store.open(settings.db_url)
    samples = rows(n)
    evaluator = Criteria("The output agrees with the reference.", method="structured")
    wall, cpu = time.perf_counter(), time.process_time()
    summary = asyncio.run(
        run_evaluation(
            samples, [evaluator], store=store, settings=settings,
            judge=f"openai:gpt-4o-mini@{base_url}", workers=2 * concurrency,
        )
    )  # fmt: skip
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    store.close()
    if summary.computed != n or summary.errors:
        raise RuntimeError(f"the run did not score every row cleanly: {summary}")
    return {"wall_s": wall, "cpu_ms_per_row": 1000 * cpu / n, "calls": summary.judge_calls}


def measure_bare(n: int, base_url: str, concurrency: int) -> dict[str, float]:
    """The floor: the bare openai SDK with a semaphore, the same JSON-schema request per
    row, nothing stored. Its CPU per row is the HTTP client's own cost."""
    import httpx2
    import openai

    schema = {"type": "object", "properties": {"verdict": {"type": "string"}}}

    async def run() -> None:
        client = openai.AsyncOpenAI(
            api_key="sk-bench",
            base_url=base_url,
            max_retries=0,
            http_client=httpx2.AsyncClient(limits=httpx2.Limits(max_connections=concurrency)),
        )
        limit = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with limit:
                await client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": f"Does {i} squared equal {i * i}?"}],
                    response_format={
                        "type": "json_schema",
                        "json_schema": {"name": "verdict", "schema": schema},
                    },
                )

        await asyncio.gather(*(one(i) for i in range(n)))
        await client.close()

    wall, cpu = time.perf_counter(), time.process_time()
    asyncio.run(run())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_s": wall, "cpu_ms_per_row": 1000 * cpu / n, "calls": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--concurrency", default="16,64")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server, base_url = start_server(args.latency_ms, folder)
        try:
            print(
                "| n | latency ms | concurrency | heldout wall s | bare SDK wall s | "
                "heldout CPU ms/row | bare SDK CPU ms/row | heldout's own CPU ms/row |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for c in (int(x) for x in args.concurrency.split(",")):
                measure_bare(min(args.n, 200), base_url, c)  # warm the server and imports
                bare = measure_bare(args.n, base_url, c)
                m = measure(args.n, base_url, c, folder)
                own = m["cpu_ms_per_row"] - bare["cpu_ms_per_row"]
                print(
                    f"| {args.n} | {args.latency_ms:g} | {c} | {m['wall_s']:.2f} | "
                    f"{bare['wall_s']:.2f} | {m['cpu_ms_per_row']:.2f} | "
                    f"{bare['cpu_ms_per_row']:.2f} | {own:.2f} |"
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of the client process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
