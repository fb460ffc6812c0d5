"""Judges: one async protocol, several providers, one client that retries and caches."""

from heldout.judges._base import Judge
from heldout.judges._cache import MemoryCache, ResponseCache
from heldout.judges._client import ClientStats, JudgeClient, Limiter
from heldout.judges._factory import make_judge, providers
from heldout.judges._replicas import ReplicaPool
from heldout.judges._spec import JudgeSpec
from heldout.judges._types import JudgeReply, JudgeRequest, Message, Usage

__all__ = [
    "ClientStats",
    "Judge",
    "JudgeClient",
    "JudgeReply",
    "JudgeRequest",
    "JudgeSpec",
    "Limiter",
    "MemoryCache",
    "Message",
    "ReplicaPool",
    "ResponseCache",
    "Usage",
    "make_judge",
    "providers",
]
