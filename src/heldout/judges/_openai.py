"""Judges behind any OpenAI-compatible chat endpoint.

One provider covers OpenAI, vLLM, Ollama, the llama.cpp server, TGI and LiteLLM: they
all speak ``POST /v1/chat/completions``. Calls go through the official ``openai`` SDK
with its own retries switched off (the :class:`~heldout.judges.JudgeClient` retries),
and every SDK or HTTP failure is mapped here, once, onto the heldout exception tree.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

import httpx2 as httpx
import openai

from heldout._errors import (
    ConfigError,
    JudgeError,
    JudgeRateLimited,
    JudgeRefused,
    JudgeTimeout,
    JudgeUnavailable,
)
from heldout.judges._base import Judge
from heldout.judges._spec import JudgeSpec
from heldout.judges._types import JudgeReply, JudgeRequest, Usage

if TYPE_CHECKING:
    from heldout.config import Price, Settings

OPENAI_BASE_URL = "https://api.openai.com/v1"
OLLAMA_BASE_URL = "http://localhost:11434/v1"
#: The key sent to endpoints that need none (vLLM, Ollama, llama.cpp accept any value).
PLACEHOLDER_API_KEY = "not-needed"
#: How many alternatives to ask for in ``choice`` mode (OpenAI's maximum).
TOP_LOGPROBS = 20

#: Built-in prices, US dollars per million tokens (input, output), from
#: https://openai.com/api/pricing as of 2025-08. ``Settings.prices`` overrides them.
BUILTIN_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o4-mini": (1.10, 4.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
}

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)
# Markup a judge may put before its answer: "**Yes**", "'No'", "(A)".
_LEADING_MARKUP = " \t\r\n\"'*`([_"


class OpenAIJudge(Judge):
    """A judge behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        model: The model name the endpoint serves.
        base_url: The endpoint, e.g. ``http://localhost:8000/v1``; OpenAI's by default.
        api_key: The API key; a placeholder is sent to custom endpoints without one.
        prices: Prices by model name, merged over :data:`BUILTIN_PRICES`.
        spec: The spec the judge was built from, when it was (kept for display).

    Raises:
        ConfigError: The endpoint is OpenAI's and no API key is set.
    """

    provider = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        prices: Mapping[str, Price] | None = None,
        spec: JudgeSpec | None = None,
    ) -> None:
        self._model = model
        self._base_url = (base_url or OPENAI_BASE_URL).rstrip("/")
        if not api_key:
            if urlsplit(self._base_url).hostname == "api.openai.com":
                raise ConfigError(
                    f"Judge openai:{model} talks to {self._base_url} but no API key is set: "
                    "export OPENAI_API_KEY, or give a local endpoint with "
                    "'openai:MODEL@http://host:port/v1'"
                )
            api_key = PLACEHOLDER_API_KEY
        self.spec = spec or JudgeSpec(self.provider, model, base_url)
        self._prices: dict[str, tuple[float, float]] = dict(BUILTIN_PRICES)
        for name, price in (prices or {}).items():
            self._prices[name] = (price.input_per_mtok, price.output_per_mtok)
        # One connection pool per judge; the SDK's own retries are off (the client retries).
        # A plain-http endpoint (a local vLLM, Ollama or llama.cpp server) has no
        # certificate to check: skipping the CA bundle saves ~0.1 s before the first call.
        plain_http = urlsplit(self._base_url).scheme == "http"
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=self._base_url,
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(verify=not plain_http),
        )

    @classmethod
    def from_spec(cls, spec: JudgeSpec, settings: Settings) -> Self:
        """Build the judge for ``openai:MODEL[@URL]`` or ``ollama:MODEL[@URL]``.

        The base URL is the spec's ``@URL``; else, for ``ollama``, the local Ollama
        server; else ``settings.openai_base_url``; else OpenAI's.
        """
        if spec.base_url:
            base_url = spec.base_url
        elif spec.provider == "ollama":
            base_url = OLLAMA_BASE_URL
        else:
            base_url = settings.openai_base_url or OPENAI_BASE_URL
        return cls(
            spec.model,
            base_url=base_url,
            api_key=settings.openai_api_key,
            prices=settings.prices,
            spec=spec,
        )

    @property
    def model(self) -> str:
        """The model name sent to the endpoint."""
        return self._model

    @property
    def endpoint(self) -> str:
        """The base URL: calls to one server share one concurrency limit."""
        return self._base_url

    # The timeout is part of the Judge protocol: it goes to the SDK, per attempt.
    async def generate(self, request: JudgeRequest, *, timeout: float) -> JudgeReply:  # noqa: ASYNC109
        """Send one chat completion and read the verdict (see :class:`JudgeRequest`).

        Raises:
            JudgeTimeout: No reply within ``timeout`` (or HTTP 408).
            JudgeRateLimited: HTTP 429, with its Retry-After.
            JudgeUnavailable: Connection error, 5xx, or a cut-off or malformed body.
            JudgeRefused: Another 4xx, a refusal or a content filter.
        """
        body = self._body(request)
        start = time.perf_counter()
        try:
            # The SDK's typed ``chat.completions.create`` re-walks every request through
            # its type transforms and builds nested models from every reply: about half a
            # millisecond of CPU per call. The same client's ``post`` keeps the SDK's
            # auth, headers, timeouts and error classes without that cost.
            response = await self._client.post(
                "/chat/completions",
                body=body,
                cast_to=httpx.Response,
                options={"timeout": timeout},
            )
        except openai.OpenAIError as exc:
            raise self._map_error(exc, timeout) from exc
        latency = time.perf_counter() - start
        try:
            completion = json.loads(response.content)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise self._error(
                JudgeUnavailable,
                f"the response body was malformed (not valid JSON: {exc}): "
                f"{response.content[:200]!r}",
            ) from exc
        return self._reply(request, completion, latency)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.close()

    def _body(self, request: JudgeRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        if request.mode == "choice":
            if not request.choices:
                raise ConfigError("A JudgeRequest in 'choice' mode needs at least one choice")
            kwargs.update(max_tokens=1, logprobs=True, top_logprobs=TOP_LOGPROBS)
        elif request.mode == "json":
            if request.json_schema is None:
                kwargs["response_format"] = {"type": "json_object"}
            else:
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "verdict",
                        "schema": request.json_schema,
                        "strict": True,
                    },
                }
        return kwargs

    def _reply(self, request: JudgeRequest, completion: Any, latency: float) -> JudgeReply:
        # Endpoints differ in what they leave out: read the reply defensively.
        choices = completion.get("choices") if isinstance(completion, dict) else None
        first = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(first, dict):
            raise self._error(
                JudgeUnavailable,
                f"the response body was malformed (no choices): {str(completion)[:200]!r}",
            )
        message = first.get("message")
        message = message if isinstance(message, dict) else {}
        refusal = message.get("refusal")
        if refusal:
            raise self._error(JudgeRefused, f"the model refused: {refusal}")
        if first.get("finish_reason") == "content_filter":
            raise self._error(JudgeRefused, "the reply was withheld by the content filter")
        content = message.get("content")
        text = content if isinstance(content, str) else ""
        choice_probs: dict[str, float] | None = None
        data: dict[str, Any] | None = None
        if request.mode == "choice":
            choice_probs = self._choice_probs(request.choices, _top_logprobs(first), text)
        elif request.mode == "json":
            data = self._parse_json(text)
        usage = _usage(completion.get("usage"))
        reply_model = completion.get("model")
        if not isinstance(reply_model, str) or not reply_model:
            reply_model = self._model
        return JudgeReply(
            text=text,
            choice_probs=choice_probs,
            data=data,
            model=reply_model,
            usage=usage,
            cost_usd=self._cost(reply_model, usage),
            latency_s=latency,
        )

    def _choice_probs(
        self, choices: tuple[str, ...], top: list[tuple[str, float]], text: str
    ) -> dict[str, float] | None:
        # None (not an error) when the reply is none of the choices: the call succeeded
        # and its reply is cached; the evaluator reading it raises JudgeParseError, so a
        # rerun reproduces the error without paying for the call again.
        if top:
            probs = choice_probs_from_logprobs(choices, top)
            if probs is not None:
                return probs
        chosen = choice_from_text(choices, text)
        if chosen is None:
            return None
        return {c: (1.0 if c == chosen else 0.0) for c in choices}

    def _parse_json(self, text: str) -> dict[str, Any] | None:
        body = text.strip()
        fenced = _FENCE.match(body)
        if fenced:
            body = fenced.group(1).strip()
        try:
            data = json.loads(body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _cost(self, reply_model: str, usage: Usage) -> float | None:
        price = (
            self._prices.get(self._model)
            or self._prices.get(reply_model)
            or self._prices.get(_DATE_SUFFIX.sub("", reply_model))
        )
        if price is None:
            return None
        return (usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]) / 1e6

    def _error(self, cls: type[JudgeError], message: str) -> JudgeError:
        return cls(f"model {self._model!r}: {message}", endpoint=self._base_url)

    def _map_error(self, exc: openai.OpenAIError, timeout: float) -> JudgeError:
        """The heldout error for an SDK error (the caller raises it ``from exc``)."""
        if isinstance(exc, openai.APITimeoutError):
            return self._error(JudgeTimeout, f"no reply within {timeout:g}s")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            if isinstance(cause, httpx.RemoteProtocolError | httpx.DecodingError):
                return self._error(
                    JudgeUnavailable, f"the response body was malformed or cut off ({cause})"
                )
            return self._error(JudgeUnavailable, f"cannot connect ({cause or exc})")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = _endpoint_message(exc)
            if status == 429:
                return JudgeRateLimited(
                    f"model {self._model!r}: rate limited (HTTP 429): {detail}",
                    endpoint=self._base_url,
                    retry_after=retry_after_seconds(exc.response.headers),
                )
            if status >= 500:
                return self._error(JudgeUnavailable, f"server error (HTTP {status}): {detail}")
            if status == 408:
                return self._error(JudgeTimeout, f"the endpoint timed out (HTTP 408): {detail}")
            return self._error(JudgeRefused, f"request refused (HTTP {status}): {detail}")
        # APIResponseValidationError and anything else the SDK may add: the body was wrong.
        return self._error(JudgeUnavailable, f"the response body was malformed ({exc})")


def choice_probs_from_logprobs(
    choices: tuple[str, ...], top: Iterable[tuple[str, float]]
) -> dict[str, float] | None:
    """The probability of each choice, read from the first token's top logprobs.

    A token counts for a choice when the stripped, case-folded token is a non-empty
    prefix of the case-folded choice (``" yes"`` and ``"Y"`` count for ``"Yes"``).
    A token that is exactly one choice counts for it; a token that is a prefix of
    several choices and none exactly is ambiguous and ignored. Probabilities of tokens
    for the same choice add up, and the result is normalised over the choices.

    Returns:
        Probabilities in the order of ``choices``, or None when no token matched.
    """
    folded = [c.casefold() for c in choices]
    mass = [0.0] * len(choices)
    for token, logprob in top:
        key = token.strip().casefold()
        if not key:
            continue
        index = _match(folded, key)
        if index is not None:
            mass[index] += math.exp(logprob)
    total = sum(mass)
    if total <= 0.0:
        return None
    return {choice: m / total for choice, m in zip(choices, mass, strict=True)}


def choice_from_text(choices: tuple[str, ...], text: str) -> str | None:
    """The choice a reply gives in words: the longest choice the reply starts with, or
    the one choice the (one-token) reply is a prefix of; None when there is none."""
    key = text.lstrip(_LEADING_MARKUP).rstrip().casefold()
    if not key:
        return None
    starts = [c for c in choices if c and key.startswith(c.casefold())]
    if starts:
        return max(starts, key=len)
    index = _match([c.casefold() for c in choices], key)
    return None if index is None else choices[index]


def _match(folded: list[str], key: str) -> int | None:
    exact = None
    prefixed = []
    for i, choice in enumerate(folded):
        if choice == key:
            exact = i
        elif choice.startswith(key):
            prefixed.append(i)
    if exact is not None:
        return exact
    return prefixed[0] if len(prefixed) == 1 else None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or OpenAI's
    ``retry-after-ms``; None when absent or unreadable."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": RFC 9110 dates are GMT anyway
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


def _endpoint_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return str(body["message"])
    if isinstance(body, str) and body:
        return body[:500]
    return exc.message


def _top_logprobs(choice: dict[str, Any]) -> list[tuple[str, float]]:
    """``(token, logprob)`` of the first token's alternatives; empty when not given."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    first = content[0] if isinstance(content, list) and content else None
    top = first.get("top_logprobs") if isinstance(first, dict) else None
    if not isinstance(top, list):
        return []
    return [
        (t["token"], float(t["logprob"]))
        for t in top
        if isinstance(t, dict)
        and isinstance(t.get("token"), str)
        and isinstance(t.get("logprob"), int | float)
    ]


def _usage(usage: object) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    prompt = usage.get("prompt_tokens", 0)
    completion = usage.get("completion_tokens", 0)
    return Usage(
        prompt_tokens=prompt if isinstance(prompt, int) else 0,
        completion_tokens=completion if isinstance(completion, int) else 0,
    )
