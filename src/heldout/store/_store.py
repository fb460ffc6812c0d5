"""The results store: runs, samples, scores and cached judge replies in one database."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar, get_args

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from heldout._errors import StoreError
from heldout.data._sample import Sample
from heldout.evaluators._score import Score
from heldout.judges._types import JudgeReply
from heldout.store import _sql
from heldout.store._engine import BUSY_TIMEOUT_S, begin_sqlite, create_engine, store_error
from heldout.store._migrate import migrate
from heldout.store._models import (
    CohortAggregate,
    RunRecord,
    RunStatus,
    StoredSample,
    StoredScore,
)
from heldout.store._schema import runs, samples, scores
from heldout.store._url import DEFAULT_URL, mask_url, parse_url

T = TypeVar("T")

_READ_REPLY = "SELECT reply FROM judge_cache WHERE key = ?"


class Store:
    """Runs, samples, scores and the judge response cache, in SQLite or PostgreSQL.

    Every write commits before it returns, so a run killed at any point keeps every
    score already written, and a resume redoes only what :meth:`finished` leaves out.
    The store also serves as the judges' :class:`~heldout.judges.ResponseCache`.

    A store holds one connection (two on PostgreSQL) and serialises their use with a
    lock: share one store per process. Every operation is idempotent, so one that
    loses its connection to the server is retried once on a new connection. Open a
    store with :meth:`open`; close it with :meth:`close` or ``with``.

    Attributes:
        url: The database URL, with its password masked.
        dialect: ``sqlite`` or ``postgresql``.
    """

    def __init__(self, engine: Engine, url: URL) -> None:
        """Wrap an engine; use :meth:`open`, which also migrates the schema."""
        self._engine = engine
        self._url = url
        self.url: str = mask_url(url)
        self.dialect: str = engine.dialect.name
        self._sqlite = self.dialect == "sqlite"
        self._sql = _sql.Statements.build(self.dialect)
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        # PostgreSQL only: single statements run in autocommit, one round trip instead
        # of three (BEGIN, statement, COMMIT). A single statement is atomic anyway.
        self._autocommit: Connection | None = None
        self._closed = False
        # SQLite files only: cache lookups read on a connection of their own, so in WAL
        # mode they never wait for the writer thread's commit (see GroupWriter).
        database = url.database if self._sqlite else None
        self._reader_path = database if database not in (None, "", ":memory:") else None
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()

    @classmethod
    def open(cls, url: str | None = None) -> Store:
        """Open the store at ``url``, creating and migrating the schema as needed.

        Args:
            url: A SQLAlchemy URL: ``sqlite:///path.db`` or ``postgresql://user:pass@
                host:port/db`` (``postgres://`` works too; both use psycopg 3). Default
                ``sqlite:///.heldout/heldout.db``, creating the folder. Callers resolve
                ``HELDOUT_DB_URL`` through :class:`~heldout.config.Settings`.

        Returns:
            An open store at the newest schema revision.

        Raises:
            StoreError: The URL is invalid, the database is unreachable, or its schema
                was written by a newer heldout.
        """
        parsed = parse_url(url or DEFAULT_URL)
        store = cls(create_engine(parsed), parsed)
        try:
            store._run(
                "connect and migrate the schema",
                lambda conn: migrate(conn, store.url),
                write=True,
                many=True,
            )
        except BaseException:
            store.close()
            raise
        return store

    # -- runs ---------------------------------------------------------------------

    def begin_run(self, run_id: str, *, name: str, kind: str, config: dict[str, Any]) -> RunRecord:
        """Create the run ``run_id``, or reopen it to resume: its status becomes ``running``.

        Reopening keeps ``created_at`` and takes the new ``name`` and ``config``.

        Raises:
            StoreError: A run with this id exists with another ``kind``.
        """
        at = _sql.now()
        row = {
            "id": run_id,
            "name": name,
            "kind": kind,
            "config": config,
            "status": "running",
            "created_at": at,
            "updated_at": at,
        }

        def work(conn: Connection) -> RunRecord:
            stored = conn.execute(sa.select(runs.c.kind).where(runs.c.id == run_id)).scalar()
            if stored is not None and stored != kind:
                raise StoreError(
                    f"Run {run_id!r} in the store at {self.url} is a {stored!r} run, not "
                    f"{kind!r}: choose another run id."
                )
            conn.execute(self._sql.upsert_run, row)
            record = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().one()
            return _sql.run_record(record)

        return self._run(f"begin run {run_id!r}", work, write=True, many=True)

    def finish_run(self, run_id: str, status: str) -> None:
        """Mark the run ``done``, ``failed`` or ``interrupted`` (or ``running`` again).

        Raises:
            StoreError: ``status`` is not a run status, or there is no such run.
        """
        if status not in get_args(RunStatus):
            raise StoreError(
                f"Cannot finish run {run_id!r} as {status!r}: a run status is one of "
                f"{', '.join(get_args(RunStatus))}."
            )
        update = (
            runs.update().where(runs.c.id == run_id).values(status=status, updated_at=_sql.now())
        )
        result = self._run(f"finish run {run_id!r}", lambda conn: conn.execute(update), write=True)
        if result.rowcount == 0:
            raise StoreError(f"No run {run_id!r} in the store at {self.url}: begin_run it first.")

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run ``run_id``, or None."""
        query = sa.select(runs).where(runs.c.id == run_id)
        row = self._run(f"read run {run_id!r}", lambda conn: conn.execute(query).mappings().first())
        return None if row is None else _sql.run_record(row)

    def list_runs(self) -> list[RunRecord]:
        """Every run, the most recently created first."""
        query = sa.select(runs).order_by(runs.c.created_at.desc(), runs.c.id)
        rows = self._run("list runs", lambda conn: conn.execute(query).mappings().all())
        return [_sql.run_record(row) for row in rows]

    # -- samples --------------------------------------------------------------------

    def put_samples(
        self, run_id: str, samples: Iterable[Sample], *, checkpoint: str | None = None
    ) -> None:
        """Insert or update the samples of a run, in one transaction.

        Args:
            run_id: A run begun with :meth:`begin_run`.
            samples: The rows; a sample already stored under the same key is replaced.
            checkpoint: The checkpoint whose outputs these are, if any.
        """
        rows = [_sql.sample_row(run_id, sample, checkpoint) for sample in samples]
        self._run(
            "write samples",
            lambda conn: _sql.execute_batched(conn, self._sql.upsert_samples, rows),
            write=True,
            many=True,
            run_id=run_id,
        )

    def samples(self, run_id: str, *, checkpoint: str | None = None) -> list[StoredSample]:
        """The samples of a run, as :meth:`put_samples` stored them.

        Args:
            run_id: The run.
            checkpoint: Only this checkpoint's rows (None: every row, whatever its
                checkpoint).

        Returns:
            The samples, each with its checkpoint and row key, ordered by sample key.
        """
        query = sa.select(samples).where(samples.c.run_id == run_id)
        if checkpoint is not None:
            query = query.where(samples.c.checkpoint == checkpoint)
        query = query.order_by(samples.c.sample_key)
        rows = self._run(
            "read samples", lambda conn: conn.execute(query).mappings().all(), run_id=run_id
        )
        return [_sql.stored_sample(row) for row in rows]

    # -- scores ---------------------------------------------------------------------

    def finished(
        self, run_id: str, *, sample_keys: Collection[str] | None = None
    ) -> set[tuple[str, str]]:
        """``(sample_key, evaluator)`` of the scores a resume must not redo.

        Those are the ``ok`` and ``skipped`` scores; ``error`` scores are redone.

        Args:
            run_id: The run.
            sample_keys: Only these rows (a shard's); None: every row of the run.
        """
        query = sa.select(scores.c.sample_key, scores.c.evaluator).where(
            scores.c.run_id == run_id, scores.c.status.in_(("ok", "skipped"))
        )
        if sample_keys is not None:
            query = query.where(scores.c.sample_key.in_(sorted(sample_keys)))
        rows = self._run(
            "read finished work", lambda conn: conn.execute(query).all(), run_id=run_id
        )
        return {(str(key), str(evaluator)) for key, evaluator in rows}

    def write_score(self, run_id: str, score: Score, *, checkpoint: str | None = None) -> None:
        """Write one score and commit, replacing any score of the same sample and evaluator.

        Args:
            run_id: A run begun with :meth:`begin_run`.
            score: The score; an earlier ``error`` score for its row is replaced.
            checkpoint: The checkpoint of the scored output, if any.
        """
        row = _sql.score_row(run_id, score, checkpoint, _sql.now())
        statement = self._sql.upsert_score
        self._run(
            "write a score", lambda conn: conn.execute(statement, row), write=True, run_id=run_id
        )

    def write_scores(
        self, run_id: str, scores: Iterable[Score], *, checkpoint: str | None = None
    ) -> None:
        """Write many scores in one transaction; see :meth:`write_score`."""
        at = _sql.now()
        rows = [_sql.score_row(run_id, score, checkpoint, at) for score in scores]
        self._run(
            "write scores",
            lambda conn: _sql.execute_batched(conn, self._sql.upsert_score, rows),
            write=True,
            many=True,
            run_id=run_id,
        )

    def scores(
        self,
        run_id: str,
        *,
        evaluator: str | None = None,
        cohort: str | None = None,
        checkpoint: str | None = None,
        metadata: bool = True,
    ) -> list[StoredScore]:
        """The scores of a run, every status, optionally filtered.

        Args:
            run_id: The run.
            evaluator: Only this evaluator's scores.
            cohort: Only this cohort's scores.
            checkpoint: Only this checkpoint's scores (None: every checkpoint).
            metadata: Read each score's metadata (per-claim verdicts, raw replies); False
                leaves it empty, which takes a fraction of the memory on large runs.

        Returns:
            The scores, ordered by sample key then evaluator.
        """
        columns = [c for c in scores.c if metadata or c.name != "metadata"]
        query = sa.select(*columns).where(scores.c.run_id == run_id)
        if evaluator is not None:
            query = query.where(scores.c.evaluator == evaluator)
        if cohort is not None:
            query = query.where(scores.c.cohort == cohort)
        if checkpoint is not None:
            query = query.where(scores.c.checkpoint == checkpoint)
        query = query.order_by(scores.c.sample_key, scores.c.evaluator)
        rows = self._run(
            "read scores", lambda conn: conn.execute(query).mappings().all(), run_id=run_id
        )
        return [_sql.stored_score(row) for row in rows]

    def aggregate(self, run_id: str) -> list[CohortAggregate]:
        """Per (checkpoint, cohort, evaluator): counts by status, mean and fail rate.

        Computed in SQL. Only ``ok`` scores enter the mean and the fail rate; errors
        and skips are counted beside them.

        Returns:
            One aggregate per group, ordered by checkpoint (None first), cohort and
            evaluator.
        """
        query = _sql.aggregate_query(run_id)
        rows = self._run(
            "aggregate scores", lambda conn: conn.execute(query).mappings().all(), run_id=run_id
        )
        return sorted((_sql.cohort_aggregate(row) for row in rows), key=_sql.aggregate_order)

    def write_batch(
        self,
        replies: Sequence[tuple[str, JudgeReply, str]],
        scored: Sequence[tuple[str, Score, str | None]],
    ) -> None:
        """Cache replies and write scores in one transaction: a group commit.

        The replies go first, so a score is never committed without the reply it was
        computed from. See :class:`~heldout.store.GroupWriter`, which collects them.

        Args:
            replies: ``(key, reply, provider)`` triples, as :meth:`put` takes them.
            scored: ``(run_id, score, checkpoint)`` triples, as :meth:`write_score` takes them.
        """
        at = _sql.now()
        reply_rows = [_sql.reply_row(key, reply, provider, at) for key, reply, provider in replies]
        score_rows = [_sql.score_row(run, score, cp, at) for run, score, cp in scored]

        def work(conn: Connection) -> None:
            if reply_rows:
                _sql.execute_batched(conn, self._sql.put_reply, reply_rows)
            if score_rows:
                _sql.execute_batched(conn, self._sql.upsert_score, score_rows)

        runs_of = sorted({run for run, _, _ in scored})
        self._run("write scores", work, write=True, many=True, run_id=", ".join(runs_of))

    # -- ResponseCache ----------------------------------------------------------------

    def get(self, key: str) -> JudgeReply | None:
        """The judge reply cached under ``key``, or None."""
        if self._reader_path is not None:
            return self._read_reply(key)
        statement = self._sql.get_reply
        reply = self._run(
            "read the judge cache", lambda conn: conn.execute(statement, {"key": key}).scalar()
        )
        return None if reply is None else JudgeReply.model_validate(reply)

    def put(self, key: str, reply: JudgeReply, *, provider: str = "") -> None:
        """Cache ``reply`` under ``key`` and commit; a key already cached is kept as is.

        Args:
            key: The request's :meth:`~heldout.judges.JudgeRequest.cache_key`.
            reply: The judge's reply.
            provider: The judge provider, recorded for inspection only.
        """
        row = _sql.reply_row(key, reply, provider, _sql.now())
        statement = self._sql.put_reply
        self._run("write the judge cache", lambda conn: conn.execute(statement, row), write=True)

    def _read_reply(self, key: str) -> JudgeReply | None:
        # Straight to the driver: through SQLAlchemy a lookup costs ten times as much,
        # and it runs on the event loop once per judge call.
        with self._read_lock:
            if self._closed:
                raise StoreError(f"Cannot read the judge cache: the store at {self.url} is closed.")
            try:
                if self._reader is None:
                    self._reader = sqlite3.connect(
                        self._reader_path or "",
                        timeout=BUSY_TIMEOUT_S,
                        isolation_level=None,
                        check_same_thread=False,
                    )
                row = self._reader.execute(_READ_REPLY, (key,)).fetchone()
            except sqlite3.Error as exc:
                raise store_error("read the judge cache", self._url, exc) from exc
        return None if row is None else JudgeReply.model_validate_json(row[0])

    # -- other tables -------------------------------------------------------------------

    def transaction(
        self, action: str, work: Callable[[Connection], T], *, write: bool = False
    ) -> T:
        """Run ``work`` on the store's connection in one committed transaction.

        For the packages that keep tables of their own in this database (``tracing``
        for traces and cohorts, ``web`` for dashboard queries and spot-check labels):
        everything ``work`` does commits together or not at all, with the store's
        locking, retry and error mapping.

        Args:
            action: What ``work`` does, for error messages ("store traces").
            work: The statements; it may run twice if the server drops the connection,
                so it must be idempotent.
            write: ``work`` writes: on SQLite the write lock is taken up front.

        Raises:
            StoreError: A database error, with the action and the store named.
        """
        return self._run(action, work, write=write, many=True)

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections and release the engine; closing twice is fine."""
        with self._lock:
            self._closed = True
            for conn in (self._conn, self._autocommit):
                if conn is not None:
                    conn.close()
            self._conn = self._autocommit = None
            self._engine.dispose()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def connect_url(self) -> str:
        """The store's URL with its password, to open the same database in another
        process (the Ray backend's shard workers). Keep it out of logs."""
        return self._url.render_as_string(hide_password=False)

    # -- transactions -------------------------------------------------------------------

    def _run(
        self,
        action: str,
        work: Callable[[Connection], T],
        *,
        write: bool = False,
        many: bool = False,
        run_id: str = "",
    ) -> T:
        """Run ``work`` in one committed transaction; database errors become StoreError.

        Args:
            action: What ``work`` does, for error messages ("write a score").
            work: The statements; run a second time if the server drops the connection
                (every store operation is idempotent).
            write: ``work`` writes: on SQLite the write lock is taken up front.
            many: ``work`` runs several statements that must commit together.
            run_id: The run concerned, for error messages.
        """
        with self._lock:
            if self._closed:
                raise StoreError(f"Cannot {action}: the store at {self.url} is closed.")
            for attempt in (1, 2):
                try:
                    conn = self._connection(autocommit=not many and not self._sqlite)
                    with conn.begin():
                        if self._sqlite:
                            begin_sqlite(conn, write=write)
                        return work(conn)
                except (SQLAlchemyError, sqlite3.Error) as exc:
                    lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
                    if lost and attempt == 1:
                        continue
                    where = f"{action} of run {run_id!r}" if run_id else action
                    raise store_error(where, self._url, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self, *, autocommit: bool) -> Connection:
        if autocommit:
            if self._autocommit is None:
                conn = self._engine.connect()
                self._autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")
            return self._autocommit
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn
