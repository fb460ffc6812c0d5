"""WinRate: the output against the reference, pairwise, through the real test server."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from heldout import Sample
from heldout.evaluators import WinRate, evaluators
from heldout.judges import JudgeClient
from tests.support.openai_server import OpenAIServer

GOOD = "Water boils at 100 degrees Celsius at sea level."
BAD = "Water boils at 50 degrees."


def sample(output: str | None, reference: str | None) -> Sample:
    return Sample(id="w1", input="When does water boil?", output=output, reference=reference)


def prefer_good(server: OpenAIServer) -> None:
    """The judge gives the good answer 0.8 when first and 0.6 when second."""

    def respond(body: dict[str, Any]) -> str:
        user = body["messages"][-1]["content"]
        first = re.search(r"<response_A>\n(.*?)\n</response_A>", user, re.S)
        assert first is not None
        p = 0.8 if first.group(1) == GOOD else 0.4
        server.top_logprobs = {"A": math.log(p), "B": math.log(1 - p)}
        return "A" if p >= 0.5 else "B"

    server.responder = respond


async def test_the_score_is_the_debiased_win_probability(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    prefer_good(openai_server)

    win = await WinRate().score(sample(GOOD, BAD), client)
    loss = await WinRate().score(sample(BAD, GOOD), client)

    assert win.status == loss.status == "ok"
    assert win.value == pytest.approx((0.8 + 0.6) / 2)
    assert loss.value == pytest.approx((0.4 + 0.2) / 2)
    assert (win.passed, loss.passed) == (True, False)
    assert win.metadata["consistent"] is True
    assert win.metadata["first_order"] in ("AB", "BA")
    assert win.metadata["orders"][0]["order"] == win.metadata["first_order"]
    assert win.reason.startswith("The judge finds the output better than the reference")
    assert win.calls == 2


async def test_an_error_in_either_order_is_an_error_score(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    openai_server.fail_next("400")

    score = await WinRate().score(sample(GOOD, BAD), client)

    assert score.status == "error"
    assert score.error_kind == "refused"
    assert score.value is None


async def test_a_sample_without_a_reference_is_skipped(
    openai_server: OpenAIServer, client: JudgeClient
) -> None:
    score = await WinRate().score(sample(GOOD, None), client)

    assert score.status == "skipped"
    assert openai_server.requests == 0


def test_registered_as_win_rate_and_pairwise() -> None:
    assert evaluators.get("win_rate") is WinRate
    assert evaluators.get("pairwise") is WinRate
    assert WinRate(criterion="Be brief.", seed=3).config()["criterion"] == "Be brief."
