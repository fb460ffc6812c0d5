"""OpenAIJudge against a real OpenAI-protocol server: one attempt per call, errors mapped."""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

import pytest

from heldout._errors import (
    ConfigError,
    JudgeRateLimited,
    JudgeRefused,
    JudgeTimeout,
    JudgeUnavailable,
)
from heldout.config import Price, Settings
from heldout.judges import JudgeRequest, JudgeSpec, Message, make_judge
from heldout.judges._openai import (
    OLLAMA_BASE_URL,
    OPENAI_BASE_URL,
    OpenAIJudge,
    choice_from_text,
    choice_probs_from_logprobs,
    retry_after_seconds,
)
from tests.support.openai_server import Fault, OpenAIServer

ASK = (Message(role="user", content="Is the sky blue?"),)
YES_NO = JudgeRequest(messages=ASK, mode="choice", choices=("Yes", "No"))


@pytest.fixture
async def judge(openai_server: OpenAIServer) -> AsyncIterator[OpenAIJudge]:
    judge = OpenAIJudge("test-model", base_url=openai_server.base_url)
    yield judge
    await judge.aclose()


async def test_text_reply_reports_model_usage_and_latency(
    judge: OpenAIJudge, openai_server: OpenAIServer
) -> None:
    openai_server.responder = lambda body: "A fine answer."
    reply = await judge.generate(JudgeRequest(messages=ASK, seed=7), timeout=5)
    assert reply.text == "A fine answer."
    assert reply.model == "test-model"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (4, 3)
    assert reply.latency_s > 0
    assert not reply.cached
    assert reply.choice_probs is None
    assert reply.data is None
    sent = openai_server.log[0].body
    assert sent is not None
    assert sent["seed"] == 7
    assert sent["messages"] == [{"role": "user", "content": "Is the sky blue?"}]


async def test_choice_probabilities_come_from_first_token_top_logprobs(
    judge: OpenAIJudge, openai_server: OpenAIServer
) -> None:
    openai_server.top_logprobs = {"Yes": -0.1, "No": -2.5, " yes": -3.0, "The": -4.0, " ": -5.0}
    request = JudgeRequest(messages=ASK, mode="choice", choices=("No", "Yes"))
    reply = await judge.generate(request, timeout=5)
    yes, no = math.exp(-0.1) + math.exp(-3.0), math.exp(-2.5)
    assert reply.choice_probs is not None
    assert list(reply.choice_probs) == ["No", "Yes"]
    assert reply.choice_probs["Yes"] == pytest.approx(yes / (yes + no))
    assert reply.choice_probs["No"] == pytest.approx(no / (yes + no))
    sent = openai_server.log[0].body
    assert sent is not None
    assert (sent["max_tokens"], sent["logprobs"], sent["top_logprobs"]) == (1, True, 20)


async def test_choice_falls_back_to_text_without_logprobs(
    judge: OpenAIJudge, openai_server: OpenAIServer
) -> None:
    openai_server.top_logprobs = None
    openai_server.responder = lambda body: " **no**, it is not"
    reply = await judge.generate(YES_NO, timeout=5)
    assert reply.choice_probs == {"Yes": 0.0, "No": 1.0}


async def test_choice_falls_back_to_text_when_no_token_matches(
    judge: OpenAIJudge, openai_server: OpenAIServer
) -> None:
    openai_server.top_logprobs = {"Maybe": -0.1, "Perhaps": -1.0}
    openai_server.responder = lambda body: "Yes"
    reply = await judge.generate(YES_NO, timeout=5)
    assert reply.choice_probs == {"Yes": 1.0, "No": 0.0}


async def test_choice_unreadable_comes_back_without_probabilities(
    judge: OpenAIJudge, openai_server: OpenAIServer
) -> None:
    # The call succeeded: the reply is returned (to be cached) and the evaluator that
    # reads it reports the parse error.
    openai_server.top_logprobs = None
    openai_server.responder = lambda body: "Maybe"
    reply = await judge.generate(YES_NO, timeout=5)
    assert reply.choice_probs is None
    assert reply.text == "Maybe"


async def test_choice_mode_without_choices_is_a_config_error(judge: OpenAIJudge) -> None:
    with pytest.raises(ConfigError, match="choice"):
        await judge.generate(JudgeRequest(messages=ASK, mode="choice"), timeout=5)


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "integer"}, "reason": {"type": "string"}},
    "required": ["score", "reason"],
    "additionalProperties": False,
}


async def test_json_mode_sends_the_schema_and_parses_the_reply(
    judge: OpenAIJudge, openai_server: OpenAIServer
) -> None:
    reply = await judge.generate(
        JudgeRequest(messages=ASK, mode="json", json_schema=SCHEMA), timeout=5
    )
    assert reply.data == {"score": 1, "reason": "ok"}
    sent = openai_server.log[0].body
    assert sent is not None
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "schema": SCHEMA, "strict": True},
    }


async def test_json_mode_accepts_a_fenced_object(
    judge: OpenAIJudge, openai_server: OpenAIServer
) -> None:
    openai_server.responder = lambda body: '```json\n{"score": 4}\n```'
    reply = await judge.generate(JudgeRequest(messages=ASK, mode="json"), timeout=5)
    assert reply.data == {"score": 4}


@pytest.mark.parametrize("text", ["not json at all", "[1, 2]"])
async def test_json_mode_unparseable_comes_back_without_data(
    judge: OpenAIJudge, openai_server: OpenAIServer, text: str
) -> None:
    openai_server.responder = lambda body: text
    reply = await judge.generate(
        JudgeRequest(messages=ASK, mode="json", json_schema=SCHEMA), timeout=5
    )
    assert reply.data is None
    assert reply.text == text


async def test_429_is_rate_limited_with_retry_after(
    judge: OpenAIJudge, openai_server: OpenAIServer
) -> None:
    openai_server.fail_next(Fault("429", retry_after="1.5"))
    with pytest.raises(JudgeRateLimited) as info:
        await judge.generate(YES_NO, timeout=5)
    assert info.value.retry_after == 1.5
    assert info.value.retryable
    assert "429" in str(info.value)


async def test_429_retry_after_as_http_date(
    judge: OpenAIJudge, openai_server: OpenAIServer
) -> None:
    openai_server.fail_next(Fault("429", retry_after=formatdate(time.time() + 30, usegmt=True)))
    with pytest.raises(JudgeRateLimited) as info:
        await judge.generate(YES_NO, timeout=5)
    assert info.value.retry_after is not None
    assert 25 < info.value.retry_after <= 30


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        ("500", JudgeUnavailable, "HTTP 500"),
        ("malformed", JudgeUnavailable, "malformed"),
        ("cutoff", JudgeUnavailable, "cut off"),
        ("400", JudgeRefused, "(HTTP 400): Invalid value for 'messages'"),
        ("content_filter", JudgeRefused, "content filter"),
        ("refusal", JudgeRefused, "refused"),
    ],
)
async def test_faults_map_onto_the_error_tree(
    judge: OpenAIJudge,
    openai_server: OpenAIServer,
    fault: Any,
    error: type[Exception],
    words: str,
) -> None:
    openai_server.fail_next(fault)
    with pytest.raises(error) as info:
        await judge.generate(YES_NO, timeout=5)
    message = str(info.value)
    assert words in message
    assert message.startswith(openai_server.base_url)
    assert "'test-model'" in message
    # The connection pool recovers: the next call on the same judge succeeds.
    assert (await judge.generate(YES_NO, timeout=5)).choice_probs is not None


async def test_slow_reply_is_a_timeout(judge: OpenAIJudge, openai_server: OpenAIServer) -> None:
    openai_server.fail_next(Fault("slow", delay_s=2.0))
    start = time.monotonic()
    with pytest.raises(JudgeTimeout):
        await judge.generate(YES_NO, timeout=0.2)
    assert time.monotonic() - start < 1.5


async def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    judge = OpenAIJudge("m", base_url=f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(JudgeUnavailable, match="cannot connect"):
            await judge.generate(YES_NO, timeout=2)
    finally:
        await judge.aclose()


async def test_cost_from_builtin_and_configured_prices(openai_server: OpenAIServer) -> None:
    openai_server.usage = (1000, 100)
    settings = Settings(prices={"my-judge": Price(input_per_mtok=1.0, output_per_mtok=2.0)})
    for model, expected in [
        ("gpt-4o-mini", (1000 * 0.15 + 100 * 0.60) / 1e6),
        ("my-judge", (1000 * 1.0 + 100 * 2.0) / 1e6),
        ("unknown-model", None),
    ]:
        judge = make_judge(f"openai:{model}@{openai_server.base_url}", settings)
        try:
            reply = await judge.generate(JudgeRequest(messages=ASK), timeout=5)
        finally:
            await judge.aclose()
        assert reply.cost_usd == (None if expected is None else pytest.approx(expected))


async def test_base_url_resolution() -> None:
    cases = [
        ("openai:m@http://h:1/v1/", Settings(), "http://h:1/v1"),
        ("openai:m", Settings(openai_base_url="http://vllm:8000/v1"), "http://vllm:8000/v1"),
        ("openai:gpt-4o-mini", Settings(openai_api_key="sk-test"), OPENAI_BASE_URL),
        ("ollama:llama3.1:8b", Settings(openai_base_url="http://vllm:8000/v1"), OLLAMA_BASE_URL),
        ("ollama:llama3.1:8b@http://gpu:11434/v1", Settings(), "http://gpu:11434/v1"),
    ]
    for spec, settings, endpoint in cases:
        judge = make_judge(spec, settings)
        try:
            assert isinstance(judge, OpenAIJudge)
            assert judge.endpoint == endpoint
            assert judge.provider == "openai"
            assert str(judge.spec) == spec
        finally:
            await judge.aclose()
    ollama = make_judge("ollama:llama3.1:8b")
    assert ollama.model == "llama3.1:8b"
    await ollama.aclose()


def test_openai_without_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIJudge.from_spec(JudgeSpec("openai", "gpt-4o-mini"), Settings())


def test_choice_probs_from_logprobs_rules() -> None:
    choices = ("A", "AB", "Yes")
    # "A" is exactly a choice; "y" a prefix of one; "" and "Q" match nothing.
    probs = choice_probs_from_logprobs(
        choices, [("A", math.log(0.2)), (" y", math.log(0.2)), (" ", -1.0), ("Q", -1.0)]
    )
    assert probs == {"A": pytest.approx(0.5), "AB": 0.0, "Yes": pytest.approx(0.5)}
    assert choice_probs_from_logprobs(("Yes", "No"), [("Maybe", -0.1)]) is None
    # A token that starts several choices, none exactly, says nothing.
    assert choice_probs_from_logprobs(("Alpha", "Alps"), [("Al", -0.1)]) is None


def test_choice_from_text_rules() -> None:
    assert choice_from_text(("A", "AB"), "AB is better") == "AB"
    assert choice_from_text(("Yes", "No"), "'Y") == "Yes"
    assert choice_from_text(("Yes", "No"), "   ") is None
    assert choice_from_text(("Yes", "No"), "Unclear") is None


def test_retry_after_parsing() -> None:
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "-3"}) == 0.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    past = formatdate(time.time() - 60, usegmt=True)
    assert retry_after_seconds({"retry-after": past}) == 0.0


async def test_models_route_and_script_defaults(openai_server: OpenAIServer) -> None:
    # The server's other route, used by benchmarks to check it is up.
    import httpx2 as httpx

    async with httpx.AsyncClient() as http:
        response = await http.get(f"{openai_server.base_url}/models")
    assert response.status_code == 200
    assert json.loads(response.text)["data"][0]["id"] == "test-model"
