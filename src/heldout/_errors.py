"""The one exception tree of heldout.

    HeldoutError
     ├── ConfigError          a setting, spec string or config file is wrong
     ├── DataError            an input file or row is wrong (names file, line, field)
     ├── JudgeError           a judge call failed after the client gave up
     │    ├── JudgeTimeout       no reply within the per-call timeout
     │    ├── JudgeRateLimited   429 from the endpoint (carries Retry-After)
     │    ├── JudgeUnavailable   connection refused, 5xx, cut-off or malformed HTTP body
     │    ├── JudgeRefused       the endpoint refused the request (4xx, content filter)
     │    └── JudgeParseError    the reply came back but cannot be read as a verdict
     ├── StoreError           the results store cannot be opened, migrated or written
     └── BackendError         the Ray cluster cannot be joined, or lost a shard for good

Backend exceptions (openai, httpx, SQLAlchemy, llama.cpp) are mapped once at the
boundary with ``raise Specific(...) from exc``. Messages say what happened, where,
and what to do.
"""

from __future__ import annotations


class HeldoutError(Exception):
    """Base class of every error heldout raises on purpose."""


class ConfigError(HeldoutError):
    """A setting, judge spec or config file is invalid."""


class DataError(HeldoutError):
    """An input file or row is invalid.

    Args:
        message: What is wrong and what to do.
        path: The file, when known.
        line: The 1-based line (or row) number, when known.
        field: The field or column, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        where = ""
        if path is not None:
            where = path if line is None else f"{path}:{line}"
        if field is not None:
            where = f"{where} field {field!r}" if where else f"field {field!r}"
        super().__init__(f"{where}: {message}" if where else message)


class JudgeError(HeldoutError):
    """A judge call failed.

    Attributes:
        retryable: Whether trying the same call again may succeed.
        endpoint: The judge endpoint or model the call went to.
    """

    retryable: bool = False

    def __init__(self, message: str, *, endpoint: str = "") -> None:
        self.endpoint = endpoint
        super().__init__(f"{endpoint}: {message}" if endpoint else message)

    @property
    def kind(self) -> str:
        """A short stable name for the error, stored with error scores."""
        return {
            JudgeTimeout: "timeout",
            JudgeRateLimited: "rate_limited",
            JudgeUnavailable: "unavailable",
            JudgeRefused: "refused",
            JudgeParseError: "parse_error",
        }.get(type(self), "judge_error")


class JudgeTimeout(JudgeError):
    """No reply arrived within the per-call timeout."""

    retryable = True


class JudgeRateLimited(JudgeError):
    """The endpoint answered 429; ``retry_after`` is its Retry-After in seconds."""

    retryable = True

    def __init__(
        self, message: str, *, endpoint: str = "", retry_after: float | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, endpoint=endpoint)


class JudgeUnavailable(JudgeError):
    """Connection error, 5xx, or a reply body that was cut off or is not JSON."""

    retryable = True


class JudgeRefused(JudgeError):
    """The endpoint refused the request (4xx other than 429, content filter)."""


class JudgeParseError(JudgeError):
    """The judge replied, but the reply cannot be read as a verdict.

    Attributes:
        raw: The judge's raw reply, kept for the record.
    """

    def __init__(self, message: str, *, endpoint: str = "", raw: str = "") -> None:
        self.raw = raw
        super().__init__(message, endpoint=endpoint)


class StoreError(HeldoutError):
    """The results store cannot be opened, migrated or written."""


class BackendError(HeldoutError):
    """The execution backend failed: the Ray cluster cannot be joined, or a shard lost
    its worker more often than it may be retried."""
