"""Checkpoint outputs generated through a real OpenAI-protocol server, cached in SQLite."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from heldout import Sample, Store
from heldout._errors import ConfigError
from heldout.config import Settings
from heldout.judges import JudgeClient, make_judge
from heldout.runner._generate import Generated, Sampling, generate_outputs
from heldout.store import GroupWriter
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer


def prompts(n: int = 4) -> list[Sample]:
    # A stale output on every prompt: generation must ignore it.
    return [Sample(id=f"p{i}", input=f"Question {i}?", output="stale") for i in range(n)]


def echo(body: dict[str, Any]) -> str:
    """The policy's answer names its model and the prompt it was asked."""
    return f"{body['model']} answers {body['messages'][-1]['content']}"


class Events:
    def __init__(self) -> None:
        self.total: int | None = None
        self.done: list[bool] = []

    def start_outputs(self, total: int) -> None:
        self.total = total

    def output_done(self, failed: bool) -> None:
        self.done.append(failed)


async def generate(
    server: OpenAIServer,
    store: Store,
    samplings: Mapping[str, Sampling],
    *,
    settings: Settings | None = None,
    samples: list[Sample] | None = None,
    workers: int = 4,
    progress: Events | None = None,
) -> dict[str, Generated]:
    """Each model of ``samplings`` answers the prompts, with the store as cache."""
    settings = settings or settings_for(server)
    async with GroupWriter(store) as cache:
        policies = {
            model: (
                JudgeClient(
                    make_judge(f"openai:{model}@{server.base_url}", settings),
                    settings=settings,
                    cache=cache,
                ),
                sampling,
            )
            for model, sampling in samplings.items()
        }
        try:
            return await generate_outputs(
                samples or prompts(), policies, workers=workers, progress=progress
            )
        finally:
            for client, _ in policies.values():
                await client.aclose()


def chat_bodies(server: OpenAIServer) -> list[dict[str, Any]]:
    return [r.body for r in server.log if r.body is not None]


async def test_each_checkpoint_answers_every_prompt_with_its_sampling(
    openai_server: OpenAIServer, sqlite_store: Store
) -> None:
    openai_server.responder = echo
    greedy = Sampling(max_tokens=64, temperature=0.0, seed=3)
    warm = Sampling(max_tokens=32, temperature=0.7, seed=None, system="Be brief.")
    events = Events()

    result = await generate(
        openai_server, sqlite_store, {"step-100": greedy, "step-200": warm}, progress=events
    )

    assert list(result) == ["step-100", "step-200"]
    for model, generated in result.items():
        assert generated.checkpoint == model
        assert generated.failures == {}
        assert [s.id for s in generated.samples] == ["p0", "p1", "p2", "p3"]
        assert [s.output for s in generated.samples] == [
            f"{model} answers Question {i}?" for i in range(4)
        ]
        assert (generated.stats.calls, generated.stats.cache_hits) == (4, 0)
    assert (events.total, events.done) == (8, [False] * 8)

    bodies = chat_bodies(openai_server)
    assert len(bodies) == openai_server.requests == 8
    by_model = {m: [b for b in bodies if b["model"] == m] for m in ("step-100", "step-200")}
    for body in by_model["step-100"]:
        assert (body["max_tokens"], body["temperature"], body["seed"]) == (64, 0.0, 3)
        assert [m["role"] for m in body["messages"]] == ["user"]
        assert not body.get("logprobs")
    for body in by_model["step-200"]:
        assert (body["max_tokens"], body["temperature"]) == (32, 0.7)
        assert "seed" not in body
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert body["messages"][1]["role"] == "user"
    assert sorted(b["messages"][-1]["content"] for b in by_model["step-200"]) == [
        f"Question {i}?" for i in range(4)
    ]


async def test_a_rerun_is_served_from_the_store_without_calls(
    openai_server: OpenAIServer, sqlite_store: Store
) -> None:
    openai_server.responder = echo
    sampling = {"step-100": Sampling(max_tokens=16)}
    first = await generate(openai_server, sqlite_store, sampling)
    calls = openai_server.requests

    # A new responder would change every answer, were any call made.
    openai_server.responder = lambda body: "a different answer"
    again = await generate(openai_server, sqlite_store, sampling)

    assert calls == 4
    assert openai_server.requests == calls
    assert again["step-100"].samples == first["step-100"].samples
    assert (again["step-100"].stats.calls, again["step-100"].stats.cache_hits) == (0, 4)


async def test_other_sampling_or_another_model_generates_anew(
    openai_server: OpenAIServer, sqlite_store: Store
) -> None:
    openai_server.responder = echo
    await generate(openai_server, sqlite_store, {"step-100": Sampling(temperature=0.0)})
    assert openai_server.requests == 4

    hotter = await generate(openai_server, sqlite_store, {"step-100": Sampling(temperature=0.9)})
    assert openai_server.requests == 8
    assert hotter["step-100"].stats.cache_hits == 0

    prompted = Sampling(temperature=0.0, system="Answer in French.")
    await generate(openai_server, sqlite_store, {"step-100": prompted})
    assert openai_server.requests == 12

    other = await generate(openai_server, sqlite_store, {"step-300": Sampling(temperature=0.0)})
    assert openai_server.requests == 16
    assert other["step-300"].samples[0].output == "step-300 answers Question 0?"

    # And the first sampling is still cached.
    await generate(openai_server, sqlite_store, {"step-100": Sampling(temperature=0.0)})
    assert openai_server.requests == 16


async def test_a_prompt_that_keeps_failing_is_a_failure_without_output(
    openai_server: OpenAIServer, sqlite_store: Store
) -> None:
    openai_server.responder = echo
    settings = settings_for(openai_server)
    assert settings.judge.max_retries == 2
    # One worker: the first three requests are p0's attempts, all refused with a 500.
    openai_server.fail_next("500", "500", "500")
    events = Events()

    result = await generate(
        openai_server,
        sqlite_store,
        {"step-100": Sampling()},
        settings=settings,
        workers=1,
        progress=events,
    )

    generated = result["step-100"]
    assert list(generated.failures) == ["p0"]
    error = generated.failures["p0"]
    assert error.kind == "unavailable"
    assert "HTTP 500" in str(error)
    assert "gave up after 3 attempts" in str(error)
    assert [s.id for s in generated.samples] == ["p1", "p2", "p3"]
    assert generated.stats.calls == openai_server.requests == 3 + 3
    assert generated.stats.gave_up == 1
    assert events.done == [True, False, False, False]

    # The failure was not cached: the next run asks for p0 only.
    again = await generate(openai_server, sqlite_store, {"step-100": Sampling()}, workers=1)
    assert again["step-100"].failures == {}
    assert again["step-100"].samples[0].output == "step-100 answers Question 0?"
    assert openai_server.requests == 7
    assert again["step-100"].stats.cache_hits == 3


async def test_a_refused_prompt_fails_at_once_and_other_checkpoints_go_on(
    openai_server: OpenAIServer, sqlite_store: Store
) -> None:
    openai_server.responder = echo
    # Interleaved by prompt: request one is step-100's p0, request two step-200's p0.
    openai_server.fail_next("400")

    result = await generate(
        openai_server,
        sqlite_store,
        {"step-100": Sampling(), "step-200": Sampling()},
        samples=prompts(2),
        workers=1,
    )

    assert result["step-100"].failures["p0"].kind == "refused"
    assert "HTTP 400" in str(result["step-100"].failures["p0"])
    assert [s.id for s in result["step-100"].samples] == ["p1"]
    assert result["step-200"].failures == {}
    assert [s.id for s in result["step-200"].samples] == ["p0", "p1"]
    assert openai_server.requests == 4  # no retry of a refusal


async def test_a_checkpoint_that_cannot_load_raises_its_config_error(
    tmp_path: Path, sqlite_store: Store
) -> None:
    # A GGUF file that passes the magic-bytes check but holds no model (a broken
    # download): the error comes from the first call, inside a worker.
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00" + b"not a model" * 4)
    settings = Settings()
    client = JudgeClient(make_judge(f"local:{broken}", settings), settings=settings)

    try:
        with pytest.raises(ConfigError) as info:
            await generate_outputs(prompts(2), {"beta": (client, Sampling())}, workers=2)
    finally:
        await client.aclose()

    # Without llama-cpp-python installed, the error says so instead.
    assert re.match(rf"{re.escape(str(broken))}: llama.cpp cannot load", str(info.value)) or (
        "needs llama-cpp-python" in str(info.value)
    )


@pytest.mark.embedded
async def test_a_gguf_checkpoint_generates_its_outputs_once(tmp_path: Path) -> None:
    """A checkpoint held as a GGUF file (here the shipped model, as a plain path)."""
    from heldout.judges._model_files import ensure_model_file, locate_model

    settings = Settings()
    gguf = ensure_model_file(locate_model("qwen2.5-1.5b", settings))
    store = Store.open(f"sqlite:///{tmp_path / 'gguf.db'}")
    prompts = [Sample(id="p1", input="Name one primary colour. One word.")]
    sampling = Sampling(max_tokens=8, temperature=0.0)
    try:
        for attempt in range(2):
            client = JudgeClient(
                make_judge(f"local:{gguf}", settings), settings=settings, cache=store
            )
            generated = await generate_outputs(prompts, {"ckpt": (client, sampling)}, workers=1)
            await client.aclose()
            [sample] = generated["ckpt"].samples
            assert (sample.output or "").strip()
            assert generated["ckpt"].stats.calls == (1 if attempt == 0 else 0)
    finally:
        store.close()
