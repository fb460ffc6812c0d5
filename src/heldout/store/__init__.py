"""The results store: runs, samples, scores and cached judge replies.

One :class:`Store` per process, on SQLite (the default, a file in ``.heldout/``) or
PostgreSQL. Every score is committed as it is written, so an interrupted run resumes
where it stopped; the schema is versioned with Alembic and migrated on open.
"""

from heldout.store._models import (
    CohortAggregate,
    RunRecord,
    RunStatus,
    StoredSample,
    StoredScore,
    sample_key,
)
from heldout.store._store import Store
from heldout.store._writer import GroupWriter

__all__ = [
    "CohortAggregate",
    "GroupWriter",
    "RunRecord",
    "RunStatus",
    "Store",
    "StoredSample",
    "StoredScore",
    "sample_key",
]
