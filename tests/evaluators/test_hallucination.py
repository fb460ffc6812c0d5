"""Hallucination against a real OpenAI-protocol server, and end to end on the embedded judge."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

from heldout import Sample
from heldout.config import LocalSettings, Settings
from heldout.evaluators._hallucination import QUESTION, Hallucination
from heldout.judges import JudgeClient, MemoryCache
from heldout.judges._local import LocalJudge
from tests.support.openai_server import OpenAIServer

QUERY = "Who wrote the novel Middlemarch?"
TRUE = "Middlemarch was written by George Eliot and published in 1871-72."
FABRICATED = "Middlemarch was written by Charles Dickens in 1901, as Smith et al. (2004) show."


def sample(output: str | None, context: str | None = None) -> Sample:
    return Sample(id="h1", cohort="honesty", input=QUERY, output=output, context=context)


def chats(server: OpenAIServer) -> list[list[dict[str, str]]]:
    return [r.body["messages"] for r in server.log if r.body and "messages" in r.body]


def p_of(top: dict[str, float], choice: str) -> float:
    return math.exp(top[choice]) / (math.exp(top["Yes"]) + math.exp(top["No"]))


async def test_the_score_is_the_probability_of_no_hallucination(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    # The judge is asked whether everything is true: "No" means a hallucination.
    top = {"No": -0.1, "Yes": -2.4}
    openai_server.top_logprobs = top

    score = await Hallucination().score(sample(FABRICATED), client)

    assert score.status == "ok"
    assert score.value == pytest.approx(p_of(top, "Yes"))
    assert score.metadata["p_hallucination"] == pytest.approx(p_of(top, "No"))
    assert score.metadata["used_context"] is False
    assert score.passed is False
    assert score.reason.startswith("The judge finds fabricated or false facts")
    assert score.calls == openai_server.requests == 1


async def test_a_clean_response_passes(openai_server: OpenAIServer, client: JudgeClient) -> None:
    openai_server.top_logprobs = {"Yes": -0.05, "No": -3.0}

    score = await Hallucination().score(sample(TRUE), client)

    assert score.value is not None
    assert score.value > 0.9
    assert score.passed is True
    assert score.reason.startswith("The judge finds no fabricated or false facts")


async def test_the_prompt_puts_the_rubric_first_and_the_question_last(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    await Hallucination().score(sample(TRUE), client)
    await Hallucination().score(sample(TRUE, context="George Eliot wrote Middlemarch."), client)

    without, with_context = chats(openai_server)
    assert without[0] == with_context[0]  # the shared rubric
    assert without[0]["role"] == "system"
    assert without[1]["content"] == (
        f"<input>\n{QUERY}\n</input>\n\n<output>\n{TRUE}\n</output>\n\n{QUESTION} Answer Yes or No."
    )
    assert with_context[1]["content"].startswith(
        "<context>\nGeorge Eliot wrote Middlemarch.\n</context>\n\n<input>"
    )


async def test_context_is_used_when_present(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    score = await Hallucination().score(sample(TRUE, context="Eliot wrote it."), client)

    assert score.metadata["used_context"] is True
    assert "checked against the context" in score.reason


async def test_structured_verdicts_name_the_fabricated_facts(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    findings = {
        "fabricated": ["written by Charles Dickens", "Smith et al. (2004)"],
        "reason": "Middlemarch is by George Eliot, and the citation is invented.",
        "verdict": "hallucinated",
    }
    openai_server.responder = lambda body: json.dumps(findings)

    score = await Hallucination(method="structured").score(sample(FABRICATED), client)

    assert score.status == "ok"
    assert (score.value, score.passed) == (0.0, False)
    assert score.metadata["fabricated"] == findings["fabricated"]
    assert "Fabricated: written by Charles Dickens; Smith et al. (2004)." in score.reason
    (request,) = [r.body for r in openai_server.log if r.body]
    assert request["response_format"]["type"] == "json_schema"


async def test_a_structured_accurate_verdict_scores_one(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    verdict = {"fabricated": [], "reason": "Eliot wrote it.", "verdict": "accurate"}
    openai_server.responder = lambda body: json.dumps(verdict)

    score = await Hallucination(method="structured").score(sample(TRUE), client)

    assert (score.value, score.passed, score.reason) == (1.0, True, "Eliot wrote it.")


@pytest.mark.parametrize(
    "reply",
    [
        {"fabricated": [], "reason": "?", "verdict": "yes"},
        {"fabricated": "Dickens", "reason": "?", "verdict": "hallucinated"},
    ],
)
async def test_an_unreadable_structured_verdict_is_a_parse_error(
    openai_server: OpenAIServer, client: JudgeClient, reply: dict[str, Any]
) -> None:
    openai_server.responder = lambda body: json.dumps(reply)

    score = await Hallucination(method="structured").score(sample(FABRICATED), client)

    assert score.status == "error"
    assert score.error_kind == "parse_error"
    assert score.value is None


async def test_a_judge_that_fails_gives_an_error_never_a_zero(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    openai_server.fail_next("500", "500", "500")  # the first try and both retries

    score = await Hallucination().score(sample(TRUE), client)

    assert score.status == "error"
    assert score.error_kind == "unavailable"
    assert score.value is None
    assert openai_server.requests == 3


async def test_a_sample_without_output_is_skipped(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    score = await Hallucination().score(sample(None), client)

    assert score.status == "skipped"
    assert openai_server.requests == 0


def test_config_names_the_method() -> None:
    config = Hallucination(method="structured", threshold=0.7).config()

    assert config["name"] == "hallucination"
    assert (config["method"], config["threshold"]) == ("structured", 0.7)


# -- the real embedded judge ---------------------------------------------------------


@pytest.fixture(scope="module")
def local_judge() -> Iterator[LocalJudge]:
    judge = LocalJudge("qwen2.5-1.5b", settings=Settings(local=LocalSettings(n_ctx=1024)))
    yield judge
    asyncio.run(judge.aclose())


@pytest.mark.embedded
async def test_embedded_a_fabricated_answer_scores_below_a_true_one(
    local_judge: LocalJudge,
) -> None:
    local = JudgeClient(local_judge, cache=MemoryCache(), timeout_s=120)
    hallucination = Hallucination()

    true = await hallucination.score(sample(TRUE), local)
    fabricated = await hallucination.score(sample(FABRICATED), local)

    assert true.value is not None
    assert fabricated.value is not None
    assert true.value > fabricated.value
