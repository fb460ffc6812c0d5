"""Group commit: the runner's writes go to the store on one thread, many per transaction.

A judge reply arrives on the event loop; writing it (and then its score) there would
stall every other call in flight for the length of a commit, once per row. Instead the
runner hands both to a :class:`GroupWriter`: a thread that takes everything queued
since its last commit and commits it in one transaction, while the loop goes on
sending calls.

Durability is unchanged. :meth:`GroupWriter.write_score` returns only once its
transaction has committed, and a worker takes its next row only after that, so a
killed run loses at most the rows in flight, as before. A cached reply is queued
before the score computed from it and committed in the same or an earlier
transaction. Replies queued but not yet committed are served by :meth:`get`, so the
cache never misses a reply it has been given.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass
from types import TracebackType

from heldout._errors import StoreError
from heldout.evaluators._score import Score
from heldout.judges._types import JudgeReply
from heldout.store._store import Store

_MAX_BATCH = 500
"""The most writes in one transaction; a long one would hold SQLite's write lock."""


@dataclass(frozen=True)
class _Reply:
    key: str
    reply: JudgeReply
    provider: str


@dataclass(frozen=True)
class _Score:
    run_id: str
    score: Score
    checkpoint: str | None
    done: asyncio.Future[None]


_Write = _Reply | _Score


class GroupWriter:
    """Writes replies and scores to ``store`` on its own thread, in group commits.

    Use it as the judges' response cache and for the runner's scores, as an async
    context manager on the event loop that awaits the scores::

        async with GroupWriter(store) as writer:
            client = JudgeClient(judge, cache=writer)
            ...
            await writer.write_score(run_id, score)

    Args:
        store: The store written to; it stays open when the writer closes.
        provider: Recorded with each cached reply, for inspection only.
    """

    def __init__(self, store: Store, *, provider: str = "") -> None:
        self.store = store
        self._provider = provider
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._pending: dict[str, JudgeReply] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failure: StoreError | None = None
        self.commits = 0
        """Transactions committed so far."""

    # -- ResponseCache ------------------------------------------------------------------

    def get(self, key: str) -> JudgeReply | None:
        """The reply cached under ``key``, committed or still queued, or None."""
        with self._lock:
            pending = self._pending.get(key)
        return pending if pending is not None else self.store.get(key)

    def put(self, key: str, reply: JudgeReply) -> None:
        """Queue ``reply`` for the cache; it commits with the next group."""
        self._raise_failure()
        with self._lock:
            self._pending.setdefault(key, reply)
        self._send(_Reply(key, reply, self._provider))

    # -- scores -------------------------------------------------------------------------

    async def write_score(
        self, run_id: str, score: Score, *, checkpoint: str | None = None
    ) -> None:
        """Queue one score and wait until its transaction has committed.

        Raises:
            StoreError: The transaction failed; the writer stops taking writes.
        """
        self._raise_failure()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._send(_Score(run_id, score, checkpoint, done))
        await done

    # -- lifecycle ----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Commit everything queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    async def __aenter__(self) -> GroupWriter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _send(self, write: _Write) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="heldout-writer", daemon=True)
            self._thread.start()
        self._queue.put(write)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    # -- the writer thread --------------------------------------------------------------

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch: list[_Write] = [first]
            while len(batch) < _MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[_Write]) -> None:
        replies = [w for w in batch if isinstance(w, _Reply)]
        scored = [w for w in batch if isinstance(w, _Score)]
        error: StoreError | None = None
        try:
            self.store.write_batch(
                [(r.key, r.reply, r.provider) for r in replies],
                [(s.run_id, s.score, s.checkpoint) for s in scored],
            )
            self.commits += 1
        except StoreError as exc:
            error = self._failure = exc
        with self._lock:
            for r in replies:
                self._pending.pop(r.key, None)
        # One wake-up of each waiting loop per transaction, not one per score.
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for s in scored:
            by_loop.setdefault(s.done.get_loop(), []).append(s.done)
        for loop, futures in by_loop.items():
            if not loop.is_closed():
                loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: StoreError | None) -> None:
    for done in futures:
        if done.done():  # the waiting worker was cancelled
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
