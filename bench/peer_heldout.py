#!/usr/bin/env python3
"""Peer script for ../shared/bench/peers: heldout scores one judge metric per row.

Run from that harness with ``PEERBENCH_PEERS_DIR=/path/to/heldout/bench``. It reads the
peer contract's environment (OPENAI_BASE_URL, N, CONCURRENCY, DATA, RESULT,
JUDGE_MODEL), judges each row with heldout's Criteria evaluator in structured (JSON
schema) mode through the real runner, writing every score and cached reply to a SQLite
store in the working folder, as a user's run would.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import heldout.judges._openai  # noqa: F401  # import the SDK before the timer, as raw_openai does
from heldout import Criteria, Sample, Settings, Store, run_evaluation
from heldout.config import EndpointSettings


def load_rows(path: str, n: int) -> list[Sample]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if len(rows) == n:
                break
            r = json.loads(line)
            rows.append(
                Sample(
                    id=str(r["id"]),
                    input=r["input"],
                    output=r["actual_output"],
                    reference=r.get("expected_output"),
                    context="\n\n".join(r.get("context") or []) or None,
                )
            )
    return rows


def main() -> None:
    base_url = os.environ["OPENAI_BASE_URL"]
    conc = os.environ.get("CONCURRENCY", "default")
    limit = 16 if conc == "default" else int(conc)
    settings = Settings(
        openai_api_key=os.environ.get("OPENAI_API_KEY", "sk-fake"),
        openai_base_url=base_url,
        db_url=f"sqlite:///{Path.cwd() / 'heldout.db'}",
        endpoints={base_url: EndpointSettings(concurrency=limit)},
    )
    rows = load_rows(os.environ["DATA"], int(os.environ.get("N", "200")))
    evaluator = Criteria(
        "The actual output agrees with the expected output on every fact.",
        method="structured",
    )
    store = Store.open(settings.db_url)
    started = time.perf_counter()
    summary = asyncio.run(
        run_evaluation(
            rows,
            [evaluator],
            store=store,
            settings=settings,
            judge=f"openai:{os.environ.get('JUDGE_MODEL', 'gpt-4o-mini')}",
            workers=max(2 * limit, 32),
        )
    )
    eval_s = time.perf_counter() - started
    store.close()
    result = {
        "peer": "heldout",
        "eval_s": eval_s,
        "scored": summary.computed - summary.errors,
        "errors": summary.errors,
        "judge_calls": summary.judge_calls,
        "default_concurrency": "16 per endpoint",
    }
    Path(os.environ["RESULT"]).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
