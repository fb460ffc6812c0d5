"""What goes to a judge and what comes back."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant"]
Mode = Literal["text", "choice", "json"]


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    """Who speaks: system, user or assistant."""
    content: str
    """The text of the message."""


class JudgeRequest(BaseModel):
    """One call to a judge, independent of the provider.

    ``mode`` says how the verdict is read:

    - ``choice``: the judge answers with one of ``choices`` (e.g. ``("Yes", "No")``);
      providers read the first token's probabilities over them where they can.
    - ``json``: the reply must be a JSON object matching ``json_schema``.
    - ``text``: free text.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages: tuple[Message, ...]
    """The conversation; put the shared part (rubric, constitution) first."""
    mode: Mode = "text"
    """How the verdict is read from the reply."""
    choices: tuple[str, ...] = ()
    """The allowed answers in ``choice`` mode, each starting with a distinct token."""
    json_schema: dict[str, Any] | None = None
    """The JSON schema of the reply in ``json`` mode."""
    max_tokens: int = 256
    """The most tokens the judge may write."""
    temperature: float = 0.0
    """Sampling temperature; 0 for judging."""
    seed: int | None = None
    """Sampling seed, for providers that take one."""
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    """Nucleus sampling: sample from the smallest set of tokens whose probability
    reaches ``top_p``; None leaves the provider's default."""
    template_version: str = ""
    """The version of the prompt template that built the messages."""

    def cache_key(self, *, provider: str, model: str) -> str:
        """The sha256 of the canonical request: what decides whether a reply can be reused.

        Transport settings (timeouts, concurrency, base URL) are left out on purpose.
        """
        request = self.model_dump(mode="json")
        if request["top_p"] is None:
            # Absent rather than null: keys of requests made before top_p existed hold.
            del request["top_p"]
        payload = {"provider": provider, "model": model, "request": request}
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Usage(BaseModel):
    """Tokens a call used, as the endpoint reported them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt_tokens: int = 0
    """Tokens read."""
    completion_tokens: int = 0
    """Tokens written."""


class JudgeReply(BaseModel):
    """What a judge answered to one request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    """The raw reply text."""
    choice_probs: dict[str, float] | None = None
    """In ``choice`` mode, the probability of each choice, normalised to sum to 1;
    None when the reply is none of the choices. Providers never raise for an unreadable
    reply: it is returned (and cached), and the evaluator reading it reports the error."""
    data: dict[str, Any] | None = None
    """In ``json`` mode, the parsed object; None when the reply is not a JSON object."""
    model: str = ""
    """The model that answered, as the endpoint named it."""
    usage: Usage = Field(default_factory=Usage)
    """Token counts, when reported."""
    cost_usd: float | None = None
    """The cost of the call, when the model's price is known."""
    latency_s: float = 0.0
    """Seconds the call took (0 when served from the cache)."""
    cached: bool = False
    """True when the reply came from the response cache, not from the judge."""
