"""The Ray backend: a run cut into shards, each judged by a Ray task, into a shared store.

The driver (the process that called :func:`~heldout.runner.run_evaluation`) does what
the local backend does up to the judging: it begins the run, stores the samples and
skips every score already stored. Then::

    pending scores ─> shards of ``ray.shard_size`` ─> Ray tasks, a bounded number at once
                                                        │ each: open the store by URL,
                                                        │ skip what is stored, score the
                                                        │ rest with the ordinary runner
                                                        ▼
    judge endpoints <── one lease actor per endpoint ── shard tasks ──> shared store

A sweep's generation goes the same way (:meth:`RayCluster.generate`): shards of one
checkpoint's prompts, each calling that checkpoint's replicas and caching the outputs in
the shared store.

Idempotency comes from the store, not from Ray: a score's key is (run, sample,
evaluator) and cached replies are keyed by request, both written as upserts. A shard
whose worker or node dies is rerun by Ray (``ray.max_retries``); the rerun skips the
scores its lost attempt committed and gets the replies it cached from the cache, so
nothing is duplicated and at most the calls in flight are paid twice.

Ray is imported only here, and this module only when the Ray backend is asked for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar

# Ray re-runs a driver started with `uv run` under `uv run` on every worker, in a copy of
# the working folder: a new environment without heldout's extras, on every node. Shard
# workers must use the environment heldout is installed in (the cluster image), so that
# hook is off unless the user turns it on.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

import ray
from ray.exceptions import RayError, RayTaskError

from heldout._errors import BackendError, ConfigError, HeldoutError, JudgeError
from heldout.config import Settings
from heldout.data._sample import Sample
from heldout.evaluators._base import Evaluator
from heldout.evaluators._score import Score
from heldout.judges._client import ClientStats, JudgeClient
from heldout.judges._factory import make_judge
from heldout.judges._replicas import replica_client
from heldout.runner._generate import Generated, OutputProgress, Sampling, generate_outputs
from heldout.runner._leases import EndpointLeases, RayLimiter
from heldout.runner._runner import Item, Progress, RunSummary, Shard, score_items
from heldout.store import GroupWriter, Store, sample_key
from heldout.store._url import parse_url, sqlite_path

T = TypeVar("T")

_LEASE_MARGIN_S = 30.0
"""How much longer than a call's timeout a lease may be held before it is reclaimed."""


@dataclass(frozen=True)
class _ShardTask:
    """One shard: what a Ray task needs besides the evaluators and lease actors."""

    index: int
    run_id: str
    store_url: str
    settings: Settings
    default_spec: str
    workers: int
    items: list[tuple[str | None, Sample, int]]  # (checkpoint, sample, evaluator index)


@dataclass
class _ShardResult:
    """What a shard did: its counts, its clients' statistics and its scores (slim)."""

    computed: int = 0
    errors: int = 0
    found_done: int = 0
    judges: dict[str, ClientStats] = field(default_factory=dict)
    scores: list[Score] = field(default_factory=list)


@dataclass(frozen=True)
class RayCluster:
    """A joined Ray cluster that runs one run's pending scores as shards.

    Build it with :meth:`join` before the run begins, so a misconfiguration is
    reported before anything is written.
    """

    store: Store
    settings: Settings
    default_spec: str
    workers: int
    store_url: str
    """The store's URL for the shard tasks: password included, a SQLite path absolute."""

    @classmethod
    def join(
        cls,
        store: Store,
        settings: Settings,
        evaluators: Sequence[Evaluator],
        default_spec: str,
        *,
        workers: int,
    ) -> RayCluster:
        """Check the run can go to Ray, and join (or start) the cluster.

        Raises:
            ConfigError: An evaluator holds a ready client (it cannot travel to other
                processes: give it a judge spec), or the store is a SQLite database the
                cluster's nodes cannot all open.
            BackendError: The cluster cannot be joined.
        """
        for evaluator in evaluators:
            if getattr(evaluator, "_client", None) is not None:
                raise ConfigError(
                    f"Evaluator {evaluator.name!r} holds a ready JudgeClient, which cannot "
                    "be sent to Ray workers: give it a judge spec string instead."
                )
        url = parse_url(store.connect_url())
        if url.get_backend_name() == "sqlite" and sqlite_path(url) is None:
            raise ConfigError(
                f"The store {store.url} is an in-memory SQLite database, which Ray workers "
                "cannot open: set HELDOUT_DB_URL to PostgreSQL (postgresql://...)."
            )
        address = settings.ray.address
        if not ray.is_initialized():
            try:
                ray.init(address=address, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise BackendError(
                    f"Cannot join the Ray cluster at {address or 'a new local instance'}: "
                    f"{exc}. Start one with 'ray start --head', or check HELDOUT_RAY_ADDRESS "
                    "(auto, or ray://host:10001)."
                ) from exc
        path = sqlite_path(url) if url.get_backend_name() == "sqlite" else None
        if path is not None:
            _check_single_node(store)
            url = url.set(database=str(path.resolve()))
        shared = url.render_as_string(hide_password=False)
        return cls(store, settings, default_spec, workers, shared)

    async def run(
        self,
        todo: Iterable[Item],
        evaluators: Sequence[Evaluator],
        *,
        run_id: str,
        summary: RunSummary,
        progress: Progress | None,
    ) -> None:
        """Judge ``todo`` in shards on the cluster; ``summary`` gets the counts.

        Raises:
            HeldoutError: A shard failed with it (a store error), re-raised as is.
            BackendError: A shard lost its worker more often than it may be retried.
        """
        specs = [e.judge_spec or self.default_spec for e in evaluators]
        leases = await self._lease_actors(specs)
        index = {id(e): i for i, e in enumerate(evaluators)}
        evaluators_ref = ray.put(list(evaluators))

        def tasks() -> Iterator[tuple[Any, ...]]:
            for number, chunk in enumerate(_chunks(todo, self.settings.ray.shard_size)):
                task = _ShardTask(
                    index=number,
                    run_id=run_id,
                    store_url=self.store_url,
                    settings=self.settings,
                    default_spec=self.default_spec,
                    workers=min(self.workers, len(chunk)),
                    items=[(cp, sample, index[id(e)]) for cp, sample, e in chunk],
                )
                yield task, evaluators_ref, leases

        try:
            await self._map(_shard_task, tasks(), lambda r: _merge(summary, r, progress))
        finally:
            for actor in leases.values():
                ray.kill(actor)

    async def generate(
        self,
        prompts: Sequence[Sample],
        served: Mapping[str, tuple[list[str], Sampling]],
        *,
        progress: OutputProgress | None = None,
    ) -> dict[str, Generated]:
        """Have each served checkpoint answer every prompt, in shards on the cluster.

        Like :func:`~heldout.runner._generate.generate_outputs`, but each shard (one
        checkpoint, ``ray.shard_size`` prompts) runs in a Ray task, calling the
        checkpoint's replicas under their cluster-wide limits and caching every output in
        the shared store, so a rerun shard generates nothing its lost attempt cached.

        Args:
            prompts: The prompts to answer.
            served: Per checkpoint, the specs of its replicas and how it samples.
            progress: Receives generation progress, once per finished shard.
        """
        leases = await self._lease_actors([s for specs, _ in served.values() for s in specs])
        results = {name: Generated(checkpoint=name) for name in served}
        answered: dict[str, dict[str, str]] = {name: {} for name in served}
        if progress is not None:
            progress.start_outputs(len(prompts) * len(served))

        def tasks() -> Iterator[tuple[Any, ...]]:
            number = 0
            # Prompt-major: every checkpoint's endpoints are busy from the start.
            for chunk in _chunks(prompts, self.settings.ray.shard_size):
                for name, (specs, sampling) in served.items():
                    workers = min(self.workers, len(chunk))
                    task = _GenerateTask(
                        number, name, specs, sampling, self.store_url, self.settings, workers, chunk
                    )
                    number += 1
                    yield task, leases

        def collect(result: _Generation) -> None:
            generated = results[result.checkpoint]
            answered[result.checkpoint].update(result.outputs)
            generated.failures.update(result.failures)
            generated.stats.add(result.stats)
            if progress is not None:
                for _ in result.outputs:
                    progress.output_done(False)
                for _ in result.failures:
                    progress.output_done(True)

        try:
            await self._map(_generate_task, tasks(), collect)
        finally:
            for actor in leases.values():
                ray.kill(actor)
        for name, generated in results.items():
            texts = answered[name]
            generated.samples = [
                p.model_copy(update={"output": texts[p.id]}) for p in prompts if p.id in texts
            ]
        return results

    async def _map(
        self,
        body: Callable[..., Any],
        tasks: Iterator[tuple[Any, ...]],
        collect: Callable[[Any], None],
    ) -> None:
        """Run ``body(*args)`` as a Ray task for each ``args`` of ``tasks``, a bounded
        number at once, handing each result to ``collect`` as it comes."""
        ray_settings = self.settings.ray
        remote = ray.remote(body).options(
            max_retries=ray_settings.max_retries,
            retry_exceptions=False,
            num_cpus=ray_settings.task_cpus,
        )
        limit = ray_settings.max_shards_in_flight or _default_in_flight(ray_settings.task_cpus)
        pending: dict[asyncio.Future[Any], tuple[int, Any]] = {}
        numbered = enumerate(tasks)
        try:
            while True:
                for number, args in islice(numbered, max(0, limit - len(pending))):
                    ref = remote.remote(*args)
                    pending[asyncio.wrap_future(ref.future())] = (number, ref)
                if not pending:
                    break
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    number, _ = pending.pop(future)
                    collect(_result_of(future, number))
        finally:
            for future, (_, ref) in pending.items():
                future.cancel()
                ray.cancel(ref)

    async def _lease_actors(self, specs: Iterable[str]) -> dict[str, Any]:
        """One lease actor per endpoint of ``specs``, with that endpoint's limit."""
        actors: dict[str, Any] = {}
        actor_class = ray.remote(EndpointLeases)
        for spec in dict.fromkeys(specs):
            client = JudgeClient(make_judge(spec, self.settings), settings=self.settings)
            try:
                endpoint = client.judge.endpoint
                if endpoint not in actors:
                    ttl = client.timeout_s + _LEASE_MARGIN_S
                    actors[endpoint] = actor_class.options(num_cpus=0).remote(
                        endpoint, client.concurrency, ttl
                    )
            finally:
                await client.aclose()
        return actors


def _shard_task(task: _ShardTask, evaluators: list[Evaluator], leases: dict[str, Any]) -> Any:
    """The body of a shard's Ray task (in a worker process)."""
    return asyncio.run(_run_shard(task, evaluators, leases))


async def _run_shard(
    task: _ShardTask, evaluators: list[Evaluator], leases: dict[str, Any]
) -> _ShardResult:
    store = Store.open(task.store_url)
    try:
        keys = {sample_key(sample.id, cp) for cp, sample, _ in task.items}
        stored = store.finished(task.run_id, sample_keys=keys)
        todo = [
            (cp, sample, evaluators[i])
            for cp, sample, i in task.items
            if (sample_key(sample.id, cp), evaluators[i].name) not in stored
        ]
        # A new id per attempt: a rerun of this shard reclaims its lost attempt's leases.
        holder = f"{task.run_id}:{task.index}/{uuid.uuid4().hex[:12]}"
        limiter = RayLimiter(leases, holder)
        shard = Shard(store, task.settings, task.default_spec, task.run_id, task.workers, limiter)
        summary = RunSummary(run_id=task.run_id)
        collected = _Collected()
        try:
            await score_items(todo, evaluators, shard, summary=summary, progress=collected)
        finally:
            await limiter.aclose()
        return _ShardResult(
            computed=summary.computed,
            errors=summary.errors,
            found_done=len(task.items) - len(todo),
            judges=summary.judges,
            scores=collected.scores,
        )
    finally:
        store.close()


@dataclass(frozen=True)
class _GenerateTask:
    """One generation shard: one checkpoint's answers to a run of prompts."""

    index: int
    checkpoint: str
    replicas: list[str]
    sampling: Sampling
    store_url: str
    settings: Settings
    workers: int
    prompts: list[Sample]


@dataclass(frozen=True)
class _Generation:
    """What a generation shard produced."""

    checkpoint: str
    outputs: dict[str, str]
    failures: dict[str, JudgeError]
    stats: ClientStats


def _generate_task(task: _GenerateTask, leases: dict[str, Any]) -> Any:
    """The body of a generation shard's Ray task (in a worker process)."""
    return asyncio.run(_run_generation(task, leases))


async def _run_generation(task: _GenerateTask, leases: dict[str, Any]) -> _Generation:
    store = Store.open(task.store_url)
    limiter = RayLimiter(leases, f"generate-{task.index}/{uuid.uuid4().hex[:12]}")
    try:
        async with GroupWriter(store) as cache:
            policy = replica_client(task.replicas, task.settings, cache=cache,
                                    limiter=limiter, first=task.index)  # fmt: skip
            try:
                generated = await generate_outputs(
                    task.prompts, {task.checkpoint: (policy, task.sampling)}, workers=task.workers
                )
            finally:
                await policy.aclose()
                await limiter.aclose()
    finally:
        store.close()
    result = generated[task.checkpoint]
    outputs = {s.id: s.output or "" for s in result.samples}
    return _Generation(task.checkpoint, outputs, result.failures, result.stats)


class _Collected:
    """A Progress that keeps each score without its metadata, for the driver's bar."""

    def __init__(self) -> None:
        self.scores: list[Score] = []

    def start(self, total: int, done: int) -> None:
        """Not called: a shard's total is its length."""

    def advance(self, score: Score) -> None:
        """Keep ``score``, slimmed."""
        self.scores.append(score.model_copy(update={"metadata": {}}))


def _result_of(future: asyncio.Future[Any], number: int) -> Any:
    try:
        result = future.result()
    except RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, HeldoutError):
            raise cause from exc
        raise BackendError(f"Shard {number} of the run failed on a Ray worker: {cause!r}") from exc
    except RayError as exc:
        raise BackendError(
            f"Shard {number} of the run was lost ({type(exc).__name__}: {exc}) more often "
            "than ray.max_retries allows. Its committed scores are kept: rerun to finish."
        ) from exc
    return result


def _merge(summary: RunSummary, result: _ShardResult, progress: Progress | None) -> None:
    # Scores the lost attempt of a rerun shard committed were computed by this run too.
    summary.computed += result.computed + result.found_done
    summary.errors += result.errors
    for spec, stats in result.judges.items():
        summary.judges.setdefault(spec, ClientStats()).add(stats)
    if progress is not None:
        for score in result.scores:
            progress.advance(score)


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _default_in_flight(task_cpus: float) -> int:
    """Twice the shard tasks the cluster's CPUs run at once: one running, one queued."""
    cpus = float(ray.cluster_resources().get("CPU", 1.0))  # type: ignore[no-untyped-call]
    return max(2, 2 * int(cpus / task_cpus))


def _check_single_node(store: Store) -> None:
    """Refuse a SQLite store unless every node of the cluster is this machine."""
    here = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    nodes = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
    if len(nodes) != 1 or nodes[0].get("NodeManagerAddress") != here:
        where = ", ".join(sorted(str(n.get("NodeManagerAddress")) for n in nodes))
        raise ConfigError(
            f"The store {store.url} is a SQLite file, but the Ray cluster's nodes ({where}) "
            "are not all this machine: workers elsewhere cannot open it. Set "
            "HELDOUT_DB_URL to a PostgreSQL database every node reaches."
        )
