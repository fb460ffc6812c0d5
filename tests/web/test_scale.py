"""With 100,000 scored rows in the store, every dashboard page still answers quickly:
aggregates are computed in SQL and rows are read a page at a time."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2 as httpx

from heldout import Sample, Score
from tests.web.conftest import serve

N = 100_000
RUN = "big-run"
LIMIT_S = 3.0
"""Per page, on a shared 2-core machine; locally each takes a fraction of that."""


def test_pages_stay_fast_with_100k_scored_rows(tmp_path: Path) -> None:
    for served in serve(tmp_path):
        store = served.store
        store.begin_run(RUN, name="big", kind="eval", config={})
        for start in range(0, N, 20_000):
            chunk = [
                Sample(id=f"r{i:06d}", cohort=f"c{i % 5}", input=f"q{i}", output=f"a{i}")
                for i in range(start, start + 20_000)
            ]
            store.put_samples(RUN, chunk)
            store.write_scores(
                RUN,
                [
                    Score(
                        sample_id=s.id,
                        cohort=s.cohort,
                        evaluator="criteria",
                        status="ok",
                        value=float(i % 3 != 0),
                        passed=i % 3 != 0,
                        reason="r",
                        judge="j",
                        template_version="t",
                    )
                    for i, s in enumerate(chunk, start=start)
                ],
            )
        store.finish_run(RUN, "done")
        pages = [
            "/",
            "/runs",
            f"/runs/{RUN}",
            f"/runs/{RUN}?after=r090000",
            f"/runs/{RUN}?failed=true&cohort=c3&after=r050000",
            f"/runs/{RUN}/rows/r099999",
            f"/runs/{RUN}/spotcheck",
        ]
        with httpx.Client(base_url=served.url, timeout=30) as client:
            for path in pages:
                started = time.perf_counter()
                response = client.get(path)
                took = time.perf_counter() - started
                assert response.status_code == 200, (path, response.text[:300])
                print(f"{path}: {took * 1000:.0f} ms")
                assert took < LIMIT_S, f"{path} took {took:.2f}s"
