"""Constitution-guided preference labels, through the real runner, store and test server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from heldout import ConfigError, DataError, Sample, Store
from heldout.labeling import (
    Candidates,
    ConstitutionalPreference,
    label_preferences,
    read_candidates,
    read_labeler,
    sample_candidates,
)
from heldout.runner._generate import Sampling
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer

BLOCK = re.compile(r"<response_([AB])>(.*?)</response_\1>", re.S)


def prefers_good(body: dict[str, Any]) -> str:
    """A judge that picks whichever response says GOOD, in any position."""
    text = body["messages"][-1]["content"]
    blocks = dict(BLOCK.findall(text))
    return "A" if "GOOD" in blocks.get("A", "") else "B"


def always_first(body: dict[str, Any]) -> str:
    return "A"


def candidates() -> list[Candidates]:
    egg = ["BAD: no idea.", "GOOD: 9 minutes."]
    return [
        Candidates(id="p1", prompt="How do I boil an egg?", responses=egg),
        Candidates(id="p2", prompt="Capital of France?", responses=["GOOD: Paris.", "BAD: Lyon."]),
    ]


def labeler(server: OpenAIServer, **kwargs: Any) -> ConstitutionalPreference:
    return ConstitutionalPreference(judge=f"openai:labeler@{server.base_url}", **kwargs)


async def test_labels_pick_the_better_response_in_either_position(
    openai_server: OpenAIServer, sqlite_store: Store
) -> None:
    openai_server.responder, openai_server.top_logprobs = prefers_good, None
    labels = await label_preferences(
        candidates(),
        labeler(openai_server),
        store=sqlite_store,
        settings=settings_for(openai_server),
    )
    assert [label.chosen for label in labels.labels] == ["GOOD: 9 minutes.", "GOOD: Paris."]
    assert [label.rejected for label in labels.labels] == ["BAD: no idea.", "BAD: Lyon."]
    first = labels.labels[0]
    assert first.probability == 1.0
    assert first.margin == 0.5
    assert first.consistent is True
    assert first.labeler == f"openai:labeler@{openai_server.base_url}"
    assert first.constitution == "heldout-default"
    assert len(first.constitution_hash) >= 8
    assert first.template_version.startswith("label-v1+pairwise")
    assert openai_server.requests == 4  # two pairs, both orders each
    # The drawn principle's text is in the judge's instructions.
    [principle] = first.principles
    systems = [r.body["messages"][0]["content"] for r in openai_server.log if r.body]
    assert any(principle_text(principle) in system for system in systems)


def principle_text(principle_id: str) -> str:
    from heldout.evaluators import Constitution

    return next(p.text for p in Constitution.default().principles() if p.id == principle_id)


async def test_a_position_biased_labeler_gives_low_confidence_labels_that_are_filtered(
    openai_server: OpenAIServer, sqlite_store: Store, tmp_path: Path
) -> None:
    openai_server.responder, openai_server.top_logprobs = always_first, None
    labels = await label_preferences(
        candidates(), labeler(openai_server), store=sqlite_store,
        settings=settings_for(openai_server), min_margin=0.1,
    )  # fmt: skip
    assert [label.probability for label in labels.labels] == [0.5, 0.5]
    assert all(label.low_confidence and label.consistent is False for label in labels.labels)
    assert labels.confident == []
    assert labels.to_jsonl(tmp_path / "kept.jsonl").read_text() == ""
    kept = labels.to_jsonl(tmp_path / "all.jsonl", keep_low_confidence=True)
    assert len(kept.read_text().splitlines()) == 2


async def test_a_rerun_is_served_from_the_store_and_cache(
    openai_server: OpenAIServer, sqlite_store: Store
) -> None:
    openai_server.responder, openai_server.top_logprobs = prefers_good, None
    settings = settings_for(openai_server)
    first = await label_preferences(
        candidates(), labeler(openai_server), store=sqlite_store, settings=settings
    )
    calls = openai_server.requests
    again = await label_preferences(
        candidates(), labeler(openai_server), store=sqlite_store, settings=settings
    )
    assert openai_server.requests == calls
    assert again.labels == first.labels
    assert again.run_id == first.run_id


async def test_a_failed_comparison_is_an_error_not_a_label(
    openai_server: OpenAIServer, sqlite_store: Store
) -> None:
    openai_server.responder, openai_server.top_logprobs = prefers_good, None
    openai_server.fail_next("400")  # not retried: the first comparison's first order fails
    labels = await label_preferences(
        candidates(),
        labeler(openai_server),
        store=sqlite_store,
        settings=settings_for(openai_server),
    )
    assert len(labels.labels) == 1
    assert len(labels.errors) == 1
    [(pair_id, reason)] = labels.errors.items()
    assert pair_id.startswith("p")
    assert "400" in reason or "Invalid" in reason


async def test_exports_load_as_trl_columns(
    openai_server: OpenAIServer, sqlite_store: Store, tmp_path: Path
) -> None:
    openai_server.responder, openai_server.top_logprobs = prefers_good, None
    labels = await label_preferences(
        candidates(),
        labeler(openai_server),
        store=sqlite_store,
        settings=settings_for(openai_server),
    )
    rows = [
        json.loads(line) for line in labels.to_jsonl(tmp_path / "l.jsonl").read_text().splitlines()
    ]
    assert {"prompt", "chosen", "rejected", "probability", "margin"} <= set(rows[0])
    table = pq.read_table(labels.to_parquet(tmp_path / "l.parquet"))
    assert table.column("chosen").to_pylist() == [r["chosen"] for r in rows]
    dataset = labels.to_hf_dataset()
    assert dataset.column_names[:3] == ["prompt", "chosen", "rejected"]
    assert dataset[1]["chosen"] == "GOOD: Paris."
    assert read_labeler(tmp_path / "l.jsonl") == f"openai:labeler@{openai_server.base_url}"


def test_principles_are_drawn_per_pair_and_reproducibly() -> None:
    a, b = ConstitutionalPreference(seed=1), ConstitutionalPreference(seed=1)
    drawn = [a.principles_for(f"p{i}:0-1")[0].id for i in range(20)]
    assert drawn == [b.principles_for(f"p{i}:0-1")[0].id for i in range(20)]
    assert len(set(drawn)) > 3
    assert len(ConstitutionalPreference(principle="all").principles_for("x")) == 13
    with pytest.raises(ConfigError):
        ConstitutionalPreference(principle="some")  # type: ignore[arg-type]


def test_bad_candidate_files_name_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(
        json.dumps({"id": "a", "prompt": "Q", "responses": ["x", "y"]}) + "\n"
        + json.dumps({"id": "b", "prompt": "Q", "responses": ["only one"]}) + "\n"
    )  # fmt: skip
    with pytest.raises(DataError, match=r"c\.jsonl:2.*responses"):
        read_candidates(path)
    path.write_text(json.dumps({"id": "a", "prompt": "Q", "responses": ["x", "y"]}) + "\n" * 2)
    assert [c.id for c in read_candidates(path)] == ["a"]
    three = Candidates(id="t", prompt="Q", responses=["x", "y", "z"])
    assert [s.id for s in three.pair_samples()] == ["t:0-1", "t:0-2", "t:1-2"]


async def test_candidates_sampled_from_a_policy_endpoint(openai_server: OpenAIServer) -> None:
    def policy(body: dict[str, Any]) -> str:
        return f"answer with seed {body.get('seed')} at top_p {body.get('top_p')}"

    openai_server.responder = policy
    prompts = [Sample(id="p1", input="Q1?"), Sample(id="p2", input="Q2?")]
    sampling = Sampling(temperature=0.9, top_p=0.95, seed=10)
    rows, missing = await sample_candidates(
        prompts, f"openai:policy@{openai_server.base_url}", k=3, sampling=sampling,
        settings=settings_for(openai_server),
    )  # fmt: skip
    assert missing == {}
    assert rows[0].responses == [f"answer with seed {s} at top_p 0.95" for s in (10, 11, 12)]
    assert all(r["temperature"] == 0.9 for r in (e.body for e in openai_server.log) if r)


def test_a_sweep_refuses_the_labeler_as_its_eval_judge(tmp_path: Path) -> None:
    from heldout.regress import RegressionEval

    labeler_spec = "openai:labeler@http://127.0.0.1:9/v1"
    row = {"prompt": "Q", "chosen": "a", "rejected": "b", "labeler": labeler_spec}
    (tmp_path / "labels.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "prompts.jsonl").write_text(json.dumps({"id": "p1", "input": "Q?"}) + "\n")
    for name in ("sft", "dpo"):
        (tmp_path / f"{name}.jsonl").write_text(json.dumps({"id": "p1", "output": name}) + "\n")
    sweep = tmp_path / "sweep.yaml"
    body = (
        "name: s\ndataset: {path: prompts.jsonl}\n"
        "evaluators: [{type: criteria, criteria: Right.}]\nbaseline: sft\n"
        "checkpoints: [{name: sft, outputs: sft.jsonl}, {name: dpo, outputs: dpo.jsonl}]\n"
        "training_labels: labels.jsonl\n"
    )
    sweep.write_text(body + f"eval_judge: '{labeler_spec}'\n")
    with pytest.raises(ConfigError, match="training judge"):
        RegressionEval(sweep)
    sweep.write_text(body + "eval_judge: 'openai:other@http://127.0.0.1:9/v1'\n")
    assert RegressionEval(sweep).training_judge == labeler_spec
