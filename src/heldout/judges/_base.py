"""The judge protocol: one provider subclass, one abstract call."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Self

from heldout.judges._types import JudgeReply, JudgeRequest

if TYPE_CHECKING:
    from heldout.config import Settings
    from heldout.judges._spec import JudgeSpec


class Judge(ABC):
    """A model that answers judge requests.

    A provider makes exactly one attempt per ``generate`` call and maps its backend's
    failures onto :class:`heldout.JudgeError` subclasses. Retries, backoff, timeouts,
    concurrency limits and caching live once, in :class:`heldout.judges.JudgeClient`.
    """

    #: Provider name used in specs and cache keys, e.g. ``"openai"`` or ``"local"``.
    provider: str = ""

    #: True when calls that share a prompt prefix are much cheaper back to back (an
    #: embedded model's prefix cache): the runner then keeps no more rows in flight than
    #: the judge runs at once, so one row's calls and one rubric's rows stay together.
    prefix_cached: bool = False

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: JudgeSpec, settings: Settings) -> Self:
        """Build the judge a parsed spec names, with endpoint details from ``settings``."""

    @property
    @abstractmethod
    def model(self) -> str:
        """The model name, as used in cache keys."""

    @property
    def endpoint(self) -> str:
        """Where calls go (a base URL or a file path): the key of its concurrency limit."""
        return f"{self.provider}:{self.model}"

    @property
    def default_concurrency(self) -> int:
        """How many calls may be in flight at once when the user sets no limit."""
        return 16

    @abstractmethod
    async def generate(self, request: JudgeRequest, *, timeout: float) -> JudgeReply:  # noqa: ASYNC109
        """Answer one request in one attempt.

        Args:
            request: What to ask.
            timeout: Seconds the attempt may take.

        Raises:
            JudgeError: A subclass saying why the attempt failed.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release connections or model memory."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.provider}:{self.model})"
