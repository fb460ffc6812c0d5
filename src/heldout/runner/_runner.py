"""The runner: streams (sample, evaluator) work through bounded workers into the store.

Every score is committed before its worker takes the next row, and every judge reply
is cached in the same or an earlier transaction than its score. The commits happen on
a writer thread that groups whatever is queued into one transaction
(:class:`~heldout.store.GroupWriter`), so the event loop never waits on the disk. A
run killed at any point therefore
loses at most the calls in flight; rerunning the same run skips every finished
score (``ok`` or ``skipped``), retries ``error`` scores, and is served from the cache
for any call that finished but whose score was not yet written.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from heldout._errors import ConfigError
from heldout.config import Settings, load_settings
from heldout.data._sample import Sample
from heldout.evaluators._base import Evaluator
from heldout.evaluators._score import Score
from heldout.judges._client import ClientStats, JudgeClient, Limiter
from heldout.judges._factory import make_judge
from heldout.store import GroupWriter, Store, sample_key

if TYPE_CHECKING:
    from heldout.runner._ray import RayCluster

_SAMPLE_BATCH = 500

Backend = Literal["local", "ray"]


class Progress(Protocol):
    """Receives progress events; the CLI draws a bar from them."""

    def start(self, total: int, done: int) -> None:
        """The run has ``total`` scores to produce, ``done`` of them already stored."""

    def advance(self, score: Score) -> None:
        """One more score was stored."""


@dataclass
class RunSummary:
    """What one call of :func:`run_evaluation` did.

    Attributes:
        run_id: The run's id in the store.
        total: Scores the run consists of.
        resumed: Scores already in the store before this call, not recomputed.
        computed: Scores computed by this call.
        errors: Error scores written by this call.
        judges: Call statistics per judge spec.
    """

    run_id: str
    total: int = 0
    resumed: int = 0
    computed: int = 0
    errors: int = 0
    judges: dict[str, ClientStats] = field(default_factory=dict)

    @property
    def judge_calls(self) -> int:
        """Calls sent to judges by this call of the runner (retries included)."""
        return sum(s.calls for s in self.judges.values())


Row = tuple[str | None, Sample]  # (checkpoint, sample)
Item = tuple[str | None, Sample, Evaluator]  # one score to compute


def run_id_for(rows: Sequence[Row], evaluators: Sequence[Evaluator], judge: str) -> str:
    """A deterministic id: the same rows, checkpoints, evaluators and judge give the same run."""
    digest = hashlib.sha256()
    for checkpoint, sample in rows:
        digest.update(f"{checkpoint}\x00".encode())
        digest.update(sample.model_dump_json().encode())
    config = {"evaluators": [e.config() for e in evaluators], "judge": judge}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


class _Clients:
    """One judge client per spec, all sharing the store as response cache."""

    def __init__(
        self,
        settings: Settings,
        cache: GroupWriter,
        default_spec: str,
        limiter: Limiter | None = None,
    ) -> None:
        self._settings = settings
        self._cache = cache
        self._default = default_spec
        self._limiter = limiter
        self.by_spec: dict[str, JudgeClient] = {}

    def for_evaluator(self, evaluator: Evaluator) -> JudgeClient:
        client = getattr(evaluator, "_client", None)
        if isinstance(client, JudgeClient):
            self.by_spec.setdefault(client.spec, client)
            return client
        spec = evaluator.judge_spec or self._default
        if spec not in self.by_spec:
            judge = make_judge(spec, self._settings)
            self.by_spec[spec] = JudgeClient(
                judge, settings=self._settings, cache=self._cache, limiter=self._limiter
            )
        return self.by_spec[spec]

    async def aclose(self) -> None:
        for client in self.by_spec.values():
            await client.aclose()


def interleave(by_checkpoint: Mapping[str | None, Iterable[Sample]]) -> list[Row]:
    """Rows ordered by sample, then checkpoint: one prompt's outputs from every
    checkpoint sit together, so they share a warm prompt prefix and every checkpoint
    progresses at the same pace."""
    rows: list[Row] = []
    position: dict[str, int] = {}
    for checkpoint, samples in by_checkpoint.items():
        for sample in samples:
            position.setdefault(sample.id, len(position))
            rows.append((checkpoint, sample))
    rank = {checkpoint: i for i, checkpoint in enumerate(by_checkpoint)}
    rows.sort(key=lambda row: (position[row[1].id], rank[row[0]]))
    return rows


async def run_evaluation(
    samples: Iterable[Sample] | Mapping[str, Iterable[Sample]],
    evaluators: Sequence[Evaluator],
    *,
    store: Store,
    settings: Settings | None = None,
    judge: str | None = None,
    run_id: str | None = None,
    name: str = "eval",
    kind: str = "eval",
    checkpoint: str | None = None,
    workers: int = 64,
    progress: Progress | None = None,
    backend: Backend | None = None,
) -> RunSummary:
    """Score every sample with every evaluator, writing each score as it comes.

    Args:
        samples: The rows to judge, or a mapping from checkpoint name to that
            checkpoint's rows (the same prompts with that checkpoint's outputs).
        evaluators: The evaluators to run on every row.
        store: Where scores and cached judge replies go.
        settings: Judge endpoints and limits; default from ``heldout.toml`` and env.
        judge: The judge spec for evaluators without one; default the eval judge.
        run_id: The run to write into; default derived from data, evaluators, judge.
        name: A human name for the run.
        kind: The kind of run (eval, regress, label).
        checkpoint: The checkpoint whose outputs ``samples`` are, when it is not a mapping.
        workers: The most rows in progress at once; judge endpoints apply their own
            (smaller) concurrency limits on top.
        progress: Receives progress events (from the Ray backend, once per finished
            shard, with the scores' metadata left out).
        backend: ``local`` (this process) or ``ray`` (shards as Ray tasks on the
            cluster of ``settings.ray``); default ``settings.backend``.

    Returns:
        What was resumed, computed and failed, with judge call statistics.

    Raises:
        ConfigError: The Ray backend was asked for and cannot serve this run (no
            ``ray`` extra, an in-memory or SQLite store shared across machines, an
            evaluator holding a ready client).
        BackendError: The Ray cluster cannot be joined, or a shard lost its worker
            more often than ``settings.ray.max_retries``.
    """
    settings = settings or load_settings()
    default_spec = judge or settings.eval_judge
    cluster = None
    if (backend or settings.backend) == "ray":
        cluster = join_ray(store, settings, evaluators, default_spec, workers)
    by_checkpoint: dict[str | None, Iterable[Sample]]
    if isinstance(samples, Mapping):
        by_checkpoint = {name: rows_of for name, rows_of in samples.items()}
    else:
        by_checkpoint = {checkpoint: samples}
    rows = interleave(by_checkpoint)
    run_id = run_id or run_id_for(rows, evaluators, default_spec)
    # Keys the caller put on the run first (a RegressionEval's ``sweep``, which the
    # dashboard's comparison reads) are kept; the runner's own are refreshed.
    previous = store.get_run(run_id)
    store.begin_run(
        run_id,
        name=name,
        kind=kind,
        config={
            **(previous.config if previous is not None else {}),
            "evaluators": [e.config() for e in evaluators],
            "judge": default_spec,
            "checkpoints": [c for c in by_checkpoint if c is not None],
        },
    )
    for cp in by_checkpoint:
        batch = [sample for c, sample in rows if c == cp]
        for start in range(0, len(batch), _SAMPLE_BATCH):
            store.put_samples(run_id, batch[start : start + _SAMPLE_BATCH], checkpoint=cp)

    finished = store.finished(run_id)
    summary = RunSummary(run_id=run_id)
    summary.total = sum(1 for e in evaluators for _, s in rows if e.applies_to(s))
    summary.resumed = summary.total - sum(1 for _ in _pending(rows, evaluators, finished))
    todo = _pending(rows, evaluators, finished)
    if progress is not None:
        progress.start(summary.total, summary.resumed)

    status = "failed"
    try:
        if cluster is not None:
            await cluster.run(todo, evaluators, run_id=run_id, summary=summary, progress=progress)
        else:
            await score_items(
                todo,
                evaluators,
                Shard(store, settings, default_spec, run_id, workers),
                summary=summary,
                progress=progress,
            )
        status = "done"
    except asyncio.CancelledError:
        status = "interrupted"
        raise
    finally:
        store.finish_run(run_id, status)
    return summary


@dataclass(frozen=True)
class Shard:
    """Where and how :func:`score_items` scores: the store, judges and run of its items.

    Attributes:
        store: Where scores and cached replies go.
        settings: Judge endpoints and limits.
        default_spec: The judge of evaluators that name none.
        run_id: The run the scores belong to.
        workers: The most rows in progress at once.
        limiter: Where endpoint slots come from (default: this event loop's semaphores).
    """

    store: Store
    settings: Settings
    default_spec: str
    run_id: str
    workers: int
    limiter: Limiter | None = None


async def score_items(
    items: Iterable[Item],
    evaluators: Sequence[Evaluator],
    shard: Shard,
    *,
    summary: RunSummary,
    progress: Progress | None = None,
) -> None:
    """Score ``items`` with bounded workers, committing each score through a GroupWriter.

    The local backend runs a whole run through this; the Ray backend runs each shard
    through it on a worker. ``summary`` gets the computed and error counts and the
    judges' call statistics.

    Raises:
        HeldoutError: A worker failed with more than a judge error (a config or store
            error); the other workers were cancelled.
    """
    writer = GroupWriter(shard.store)
    clients = _Clients(shard.settings, writer, shard.default_spec, shard.limiter)
    queue: asyncio.Queue[Item | None]
    workers = shard.workers

    async def produce() -> None:
        for item in items:
            await queue.put(item)
        for _ in range(workers):
            await queue.put(None)

    async def work() -> None:
        while (item := await queue.get()) is not None:
            cp, sample, evaluator = item
            score = await evaluator.score(sample, clients.for_evaluator(evaluator))
            await writer.write_score(shard.run_id, score, checkpoint=cp)
            summary.computed += 1
            summary.errors += score.status == "error"
            if progress is not None:
                progress.advance(score)

    try:
        # Building the clients may fail (an unknown provider): inside the try, so the
        # caller marks the run failed.
        workers = _worker_count(workers, [clients.for_evaluator(e) for e in evaluators])
        queue = asyncio.Queue(maxsize=2 * workers)
        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            for _ in range(workers):
                group.create_task(work())
    except BaseExceptionGroup as group_error:
        # A worker failed (a config error, a store error): the others were cancelled.
        # Surface the first real error itself, so callers see a HeldoutError, not a group.
        first = group_error.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from group_error
    finally:
        summary.judges = {spec: c.stats for spec, c in clients.by_spec.items()}
        await clients.aclose()
        await writer.aclose()


def join_ray(
    store: Store,
    settings: Settings,
    evaluators: Sequence[Evaluator],
    default_spec: str,
    workers: int,
) -> RayCluster:
    """The Ray cluster of ``settings.ray``, checked to serve this store and evaluators.

    Raises:
        ConfigError: Ray is not installed, or the run cannot go to Ray (see
            :meth:`~heldout.runner._ray.RayCluster.join`).
        BackendError: The cluster cannot be joined.
    """
    try:
        from heldout.runner._ray import RayCluster  # Ray only when asked for
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "ray":
            raise
        raise ConfigError(
            "The Ray backend needs Ray: pip install 'heldout[ray]' (or uv sync --extra ray), "
            "or run with --backend local."
        ) from exc
    return RayCluster.join(store, settings, evaluators, default_spec, workers=workers)


def _worker_count(workers: int, clients: Sequence[JudgeClient]) -> int:
    """At most ``workers``; with only prefix-cached judges, no more than they run at once.

    An embedded judge runs one call at a time and is fast only while consecutive calls
    share a prompt prefix. More rows in flight than its slots would queue their calls
    in arrival order, interleaving rows and rubrics and re-reading a long shared prefix
    (a constitution: thousands of tokens) at every switch.
    """
    if clients and all(c.judge.prefix_cached for c in clients):
        unique = {id(c): c for c in clients}.values()
        return max(1, min(workers, sum(c.concurrency for c in unique)))
    return workers


def _pending(
    rows: Sequence[Row], evaluators: Sequence[Evaluator], finished: set[tuple[str, str]]
) -> Iterator[Item]:
    # Evaluator-major order: consecutive calls share the evaluator's rubric, which
    # prompts put first, so a local judge's prefix cache stays warm across rows.
    for evaluator in evaluators:
        for checkpoint, sample in rows:
            if not evaluator.applies_to(sample):
                continue
            if (sample_key(sample.id, checkpoint), evaluator.name) not in finished:
                yield checkpoint, sample, evaluator
