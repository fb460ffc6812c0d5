"""The Ray backend on a real single-node Ray cluster, a real PostgreSQL and the
OpenAI-protocol test server: the same results as the local backend, a worker killed
midway that loses and duplicates nothing, and endpoint limits that hold across the
cluster."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from heldout import ConfigError, Criteria, Sample, Settings, Store, load_settings, run_evaluation
from heldout.config import EndpointSettings, JudgeDefaults, RaySettings
from heldout.data import Sample as DataSample
from heldout.evaluators import Evaluator, Score
from heldout.judges import JudgeClient, make_judge
from heldout.regress import RegressionEval, RegressionResult
from heldout.store import StoredScore
from tests.support.openai_server import OpenAIServer

pytestmark = pytest.mark.postgres

CRITERION = "The answer is good."


def judge(body: dict[str, Any]) -> str:
    """Yes to an output that says ``good``."""
    output = re.search(r"<output>\n(.*)\n</output>", body["messages"][-1]["content"], re.S)
    assert output is not None, "every judge request shows the output"
    return "Yes" if "good" in output.group(1) else "No"


def policy(body: dict[str, Any]) -> str:
    """A checkpoint that answers even-numbered prompts well."""
    index = int(body["messages"][-1]["content"].split()[-1])
    return f"{'good' if index % 2 == 0 else 'poor'} answer {index}"


def settings(server: OpenAIServer, db_url: str, *, concurrency: int = 4, **ray: Any) -> Settings:
    return Settings(
        openai_api_key="sk-test",
        db_url=db_url,
        judge=JudgeDefaults(timeout_s=10, max_retries=2, backoff_base_s=0.01, backoff_max_s=0.05),
        endpoints={server.base_url: EndpointSettings(concurrency=concurrency)},
        ray=RaySettings(**ray),
    )


def rows(n: int) -> list[Sample]:
    return [
        Sample(id=f"r{i:02d}", cohort="honesty", input="Q?", output=f"{'good' * (i % 3)} A{i:02d}")
        for i in range(n)
    ]


def table(store: Store, run_id: str) -> list[StoredScore]:
    with store:
        return store.scores(run_id)


# -- a sweep: local and Ray give the same results ---------------------------------------


def write_sweep(folder: Path, judge_url: str, replicas: list[str]) -> Path:
    prompts = [{"id": f"p{i}", "cohort": ["helpfulness", "regression"][i % 2],
                "input": f"question {i}"} for i in range(12)]  # fmt: skip
    (folder / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    sft = [{"id": f"p{i}", "output": f"{'good' if i < 4 else 'poor'} sft {i}"} for i in range(12)]
    (folder / "sft.jsonl").write_text("".join(json.dumps(o) + "\n" for o in sft))
    endpoints = ", ".join(f'"openai:step-100@{url}"' for url in replicas)
    (folder / "sweep.yaml").write_text(
        f"""\
name: ray-sweep
dataset: {{path: prompts.jsonl}}
eval_judge: "openai:judge@{judge_url}"
evaluators:
  - {{type: criteria, criteria: {CRITERION}, options: {{name: good}}}}
  - {{type: criteria, criteria: The answer is polite., options: {{name: polite}}}}
baseline: sft
checkpoints:
  - {{name: sft, outputs: sft.jsonl}}
  - {{name: step-100, endpoint: [{endpoints}]}}
statistics: {{n_resamples: 199}}
"""
    )
    return folder / "sweep.yaml"


def test_a_sweep_on_ray_gives_the_local_results_with_generation_balanced_over_replicas(
    tmp_path: Path, pg_url: str, ray_address: str
) -> None:
    results: dict[str, tuple[RegressionResult, list[StoredScore]]] = {}
    with (
        OpenAIServer(responder=judge, top_logprobs=None, latency_ms=5) as judge_server,
        OpenAIServer(responder=policy, latency_ms=5) as replica_a,
        OpenAIServer(responder=policy, latency_ms=5) as replica_b,
    ):
        sweep = write_sweep(tmp_path, judge_server.base_url,
                            [replica_a.base_url, replica_b.base_url])  # fmt: skip
        local_db = f"sqlite:///{tmp_path / 'local.db'}"
        for backend, db_url in (("local", local_db), ("ray", pg_url)):
            config = settings(judge_server, db_url, shard_size=5).model_copy(
                update={"backend": backend}
            )
            result = RegressionEval(sweep, settings=config).run()
            results[backend] = (result, table(Store.open(db_url), result.run_id))
            # Each run generates every output once, spread over both replicas.
            assert replica_a.requests + replica_b.requests == 12
            assert abs(replica_a.requests - replica_b.requests) <= 2
            replica_a.reset()
            replica_b.reset()
        assert judge_server.requests == 2 * (2 * 12 * 2)  # two runs x 48 scores

    (local, local_scores), (on_ray, ray_scores) = results["local"], results["ray"]
    assert on_ray.run_id == local.run_id
    assert len(ray_scores) == 48
    assert ray_scores == local_scores
    assert on_ray.table.to_records() == local.table.to_records()
    assert on_ray.summary is not None
    assert local.summary is not None
    assert (on_ray.summary.computed, on_ray.summary.errors) == (48, 0)
    assert on_ray.summary.judge_calls == local.summary.judge_calls == 48


# -- a worker killed midway -------------------------------------------------------------


class KillOnce(Criteria):
    """Criteria that, the first time it meets ``victim``, kills its own worker process
    (SIGKILL: no clean-up, calls in flight, scores queued) a moment into the row."""

    def __init__(self, marker: Path, victim: str) -> None:
        super().__init__(CRITERION)
        self.marker = marker
        self.victim = victim

    async def score(self, sample: DataSample, client: JudgeClient) -> Score:
        if sample.id == self.victim and not self.marker.exists():
            await asyncio.sleep(0.2)  # the shard's other rows go on meanwhile
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return await super().score(sample, client)


def asked(server: OpenAIServer) -> Counter[str]:
    """How often the server was asked about each row (by its output's ``A<nn>``)."""
    counts: Counter[str] = Counter()
    for record in server.log:
        if record.body is not None:
            counts.update(re.findall(r"A\d\d", record.body["messages"][-1]["content"])[:1])
    return counts


def test_a_worker_killed_midway_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, pg_url: str, ray_address: str
) -> None:
    samples = rows(40)
    marker = tmp_path / "killed"
    with OpenAIServer(latency_ms=40) as server:
        local_db = f"sqlite:///{tmp_path / 'local.db'}"
        local = Store.open(local_db)
        expected = asyncio.run(
            run_evaluation(samples, [Criteria(CRITERION)], store=local,
                           settings=settings(server, local_db), judge=f"openai:j@{server.base_url}")
        )  # fmt: skip
        local.close()
        server.reset()

        store = Store.open(pg_url)
        summary = asyncio.run(
            run_evaluation(
                samples, [KillOnce(marker, victim="r25")], store=store, backend="ray",
                settings=settings(server, pg_url, shard_size=10), workers=4,
                judge=f"openai:j@{server.base_url}",
            )
        )  # fmt: skip
        store.close()
        counts = asked(server)

    assert marker.exists(), "the worker was killed"
    assert summary.run_id == expected.run_id
    assert (summary.computed, summary.errors) == (40, 0)
    stored = table(Store.open(pg_url), summary.run_id)
    keys = [(s.sample_key, s.evaluator) for s in stored]
    assert len(keys) == len(set(keys)) == 40, "none lost, none twice"
    assert stored == table(Store.open(local_db), expected.run_id)
    # Every row was asked about, the victim's too (its shard was redone); only calls in
    # flight when the worker died (at most its 4 rows in progress) were asked twice.
    assert set(counts) == {f"A{i:02d}" for i in range(40)}
    assert sum(n - 1 for n in counts.values()) <= 4
    assert sum(counts.values()) <= 44


# -- the endpoint limit holds across the cluster ---------------------------------------


def test_an_endpoint_limit_holds_across_every_worker_of_the_cluster(
    pg_url: str, ray_address: str
) -> None:
    with OpenAIServer(latency_ms=30) as server:
        store = Store.open(pg_url)
        # Four shards at once (2 CPUs, half a CPU each), each with 8 rows in progress:
        # 32 calls would be in flight if each process kept its own limit.
        summary = asyncio.run(
            run_evaluation(
                rows(60), [Criteria(CRITERION)], store=store, backend="ray", workers=8,
                settings=settings(server, pg_url, concurrency=3, shard_size=8, task_cpus=0.5),
                judge=f"openai:j@{server.base_url}",
            )
        )  # fmt: skip
        store.close()
        assert summary.computed == 60
        assert server.requests == 60
        assert server.max_in_flight == 3


# -- what the Ray backend refuses, and SQLite on one machine ----------------------------


def test_an_in_memory_store_is_refused_before_anything_runs() -> None:
    with OpenAIServer() as server, Store.open("sqlite:///:memory:") as store:
        with pytest.raises(ConfigError, match="in-memory SQLite"):
            asyncio.run(
                run_evaluation(rows(2), [Criteria(CRITERION)], store=store, backend="ray",
                               settings=settings(server, "sqlite:///:memory:"),
                               judge=f"openai:j@{server.base_url}")
            )  # fmt: skip
        assert store.list_runs() == []
        assert server.requests == 0


def test_an_evaluator_holding_a_ready_client_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    with OpenAIServer() as server, Store.open(db) as store:
        config = settings(server, db)
        client = JudgeClient(make_judge(f"openai:j@{server.base_url}", config), settings=config)
        evaluator: Evaluator = Criteria(CRITERION, judge=client)
        with pytest.raises(ConfigError, match="judge spec string"):
            asyncio.run(run_evaluation(rows(2), [evaluator], store=store, backend="ray",
                                       settings=config))  # fmt: skip
        asyncio.run(client.aclose())
        assert server.requests == 0


def test_a_sqlite_file_serves_a_single_node_cluster_on_this_machine(
    tmp_path: Path, ray_address: str
) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    with OpenAIServer() as server, Store.open(db) as store:
        summary = asyncio.run(
            run_evaluation(rows(30), [Criteria(CRITERION)], store=store, backend="ray",
                           settings=settings(server, db, shard_size=4),
                           judge=f"openai:j@{server.base_url}")
        )  # fmt: skip
        assert (summary.computed, summary.errors) == (30, 0)
        assert len(store.scores(summary.run_id)) == 30
        assert server.requests == 30


# -- the local backend needs no Ray; the command line reaches the cluster ---------------

LOCAL_RUN = """\
import asyncio, sys
import heldout
assert "ray" not in sys.modules, "import heldout loaded ray"
from heldout import Criteria, Sample, Settings, Store, run_evaluation
from tests.support.openai_server import OpenAIServer
with OpenAIServer() as server, Store.open("sqlite:///:memory:") as store:
    settings = Settings(openai_api_key="sk-test")
    rows = [Sample(id=str(i), input="Q?", output="A") for i in range(3)]
    summary = asyncio.run(run_evaluation(rows, [Criteria("ok")], store=store,
                          settings=settings, judge=f"openai:j@{server.base_url}"))
    assert summary.computed == 3, summary
print(sorted(m for m in sys.modules if m == "ray" or m.startswith("ray.")))
"""


def test_import_heldout_and_a_local_run_do_not_import_ray() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "HELDOUT_BACKEND"}
    out = subprocess.run([sys.executable, "-c", LOCAL_RUN], capture_output=True, text=True,
                         cwd=root, env=env, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_heldout_eval_with_backend_ray_joins_the_cluster_at_ray_address(
    tmp_path: Path, pg_url: str, ray_address: str
) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(s.model_dump_json() + "\n" for s in rows(12)), encoding="utf-8")
    with OpenAIServer() as server:
        env = {
            **os.environ,
            "HELDOUT_DB_URL": pg_url,
            "HELDOUT_EVAL_JUDGE": f"openai:j@{server.base_url}",
            "OPENAI_API_KEY": "sk-test",
            "COLUMNS": "200",
        }
        args = ["eval", str(data), "--run-id", "cli-ray", "--backend", "ray",
                "--ray-address", ray_address]  # fmt: skip
        out = subprocess.run([sys.executable, "-m", "heldout", *args], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=180)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "12 scores computed" in out.stdout
        assert server.requests == 12
    with Store.open(pg_url) as store:
        assert len(store.scores("cli-ray")) == 12
        run = store.get_run("cli-ray")
        assert run is not None
        assert run.status == "done"


def test_an_unknown_backend_on_the_command_line_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text(rows(1)[0].model_dump_json() + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "heldout", "eval", str(data), "--backend", "dask"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2
    assert "--backend must be local or ray, not 'dask'" in out.stderr


def test_the_backend_comes_from_the_config_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "heldout.toml"
    config.write_text('backend = "ray"\n[ray]\nshard_size = 50\ntask_cpus = 0.5\n')
    monkeypatch.delenv("HELDOUT_BACKEND", raising=False)
    monkeypatch.setenv("HELDOUT_RAY_ADDRESS", "ray://head:10001")
    loaded = load_settings(config)
    assert (loaded.backend, loaded.ray.address, loaded.ray.shard_size) == (
        "ray",
        "ray://head:10001",
        50,
    )
    monkeypatch.setenv("HELDOUT_BACKEND", "local")
    assert load_settings(config).backend == "local"
    monkeypatch.setenv("HELDOUT_BACKEND", "spark")
    with pytest.raises(ConfigError, match="backend"):
        load_settings(config)


# -- leases on a real actor: reused within a process, bounded across processes ----------


def test_processes_reuse_their_leases_without_exceeding_the_endpoint_limit(
    ray_address: str,
) -> None:
    from heldout.runner._leases import EndpointLeases, RayLimiter
    from heldout.runner._ray import ray

    actor = ray.remote(EndpointLeases).options(num_cpus=0).remote("http://judge/v1", 4, 60.0)
    shards = [RayLimiter({"http://judge/v1": actor}, f"run:{i}/a") for i in range(2)]
    in_flight, peak = 0, 0

    async def call(limiter: RayLimiter) -> None:
        nonlocal in_flight, peak
        async with limiter.slot("http://judge/v1", 4):
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.005)
            in_flight -= 1

    async def run() -> None:
        await asyncio.gather(*(call(shards[i % 2]) for i in range(300)))
        for limiter in shards:
            await limiter.aclose()

    asyncio.run(run())
    stats = ray.get(actor.stats.remote())
    ray.kill(actor)
    assert peak == 4, "the limit was reached and never passed"
    assert stats.max_held == 4
    # An ask still on its way when a shard ended is granted, then withdrawn.
    assert sum(limiter.acquired for limiter in shards) <= stats.granted
    assert stats.granted < 300 / 4, "most calls reused a lease without asking the actor"
    assert stats.held == 0, "the shards gave every lease back when they ended"


# -- labeling on the cluster --------------------------------------------------------------


def test_preference_labels_on_ray_are_the_local_labels(
    tmp_path: Path, pg_url: str, ray_address: str
) -> None:
    from heldout.labeling import Candidates, ConstitutionalPreference, label_preferences
    from tests.labeling.test_labeling import prefers_good

    pairs = [
        Candidates(id=f"p{i}", prompt=f"Question {i}?",
                   responses=[f"BAD: answer {i}.", f"GOOD: answer {i}.", f"BAD: other {i}."])
        for i in range(8)
    ]  # fmt: skip
    labels = {}
    with OpenAIServer(responder=prefers_good, top_logprobs=None) as server:
        local_db = f"sqlite:///{tmp_path / 'local.db'}"
        for backend, db in (("local", local_db), ("ray", pg_url)):
            config = settings(server, db, shard_size=6).model_copy(update={"backend": backend})
            with Store.open(db) as store:
                labeler = ConstitutionalPreference(judge=f"openai:labeler@{server.base_url}")
                labels[backend] = asyncio.run(
                    label_preferences(pairs, labeler, store=store, settings=config)
                )
        assert server.requests == 2 * (8 * 3 * 2)  # two runs x 24 pairs x both orders
    assert labels["ray"].run_id == labels["local"].run_id
    assert labels["ray"].labels == labels["local"].labels
    assert len(labels["ray"].labels) == 24
    assert all(label.chosen.startswith("GOOD") or label.rejected.startswith("BAD")
               for label in labels["ray"].labels)  # fmt: skip


def test_without_reuse_every_call_takes_a_lease_of_its_own(ray_address: str) -> None:
    from heldout.runner._leases import EndpointLeases, RayLimiter
    from heldout.runner._ray import ray

    actor = ray.remote(EndpointLeases).options(num_cpus=0).remote("http://judge/v1", 16, 60.0)
    limiter = RayLimiter({"http://judge/v1": actor}, "run:0/a", reuse_s=0.0)

    async def run() -> None:
        async def call() -> None:
            async with limiter.slot("http://judge/v1", 16):
                pass

        await asyncio.wait_for(asyncio.gather(*(call() for _ in range(300))), timeout=60)
        await limiter.aclose()

    asyncio.run(run())
    stats = ray.get(actor.stats.remote())
    ray.kill(actor)
    assert limiter.acquired == 300
    assert stats.max_held <= 16
    assert stats.held == 0
