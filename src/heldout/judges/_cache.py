"""The response cache: a judge reply is paid for once."""

from __future__ import annotations

from typing import Protocol

from heldout.judges._types import JudgeReply


class ResponseCache(Protocol):
    """Where replies are kept by :meth:`JudgeRequest.cache_key`.

    Only successful replies are stored: a timeout or a 5xx is retried on the next run.
    A reply the evaluator cannot parse is stored (the call succeeded), so a rerun
    reproduces the parse error without paying for the call again.
    """

    def get(self, key: str) -> JudgeReply | None:
        """The reply stored under ``key``, or None."""
        ...

    def put(self, key: str, reply: JudgeReply) -> None:
        """Store ``reply`` under ``key`` (a second put of the same key is a no-op)."""
        ...


class MemoryCache:
    """A process-local cache, for tests and one-off calls."""

    def __init__(self) -> None:
        self._replies: dict[str, JudgeReply] = {}

    def get(self, key: str) -> JudgeReply | None:
        return self._replies.get(key)

    def put(self, key: str, reply: JudgeReply) -> None:
        self._replies.setdefault(key, reply)

    def __len__(self) -> int:
        return len(self._replies)
