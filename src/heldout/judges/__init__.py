"""Judges: one async protocol, several providers, one client that retries and caches."""

from heldout.judges._base import Judge
from heldout.judges._cache import MemoryCache, ResponseCache
from heldout.judges._client import ClientStats, JudgeClient
from heldout.judges._factory import make_judge, providers
from heldout.judges._spec import JudgeSpec
from heldout.judges._types import JudgeReply, JudgeRequest, Message, Usage

__all__ = [
    "ClientStats",
    "Judge",
    "JudgeClient",
    "JudgeReply",
    "JudgeRequest",
    "JudgeSpec",
    "MemoryCache",
    "Message",
    "ResponseCache",
    "Usage",
    "make_judge",
    "providers",
]
