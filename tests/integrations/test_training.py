"""TrainingEval without a trainer: outputs given by the caller or served by an endpoint,
judged by a real OpenAI-protocol server into a real SQLite store."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from heldout import ConfigError, DataError, Store
from heldout.config import Settings
from heldout.integrations import TrainingEval
from heldout.sweep import SweepConfig
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer

COHORTS = ("helpfulness", "harmlessness", "honesty")
N = 6  # prompts per cohort


def judge(body: dict[str, Any]) -> str:
    found = re.search(r"<output>\n(.*)\n</output>", body["messages"][-1]["content"], re.S)
    return "Yes" if found is not None and "good" in found.group(1) else "No"


def policy(body: dict[str, Any]) -> str:
    return f"a good answer from {body['model']}"


def write_sweep(folder: Path, judge_url: str, baseline: str, extra: str = "") -> Path:
    rows = [
        {"id": f"{c}-{i}", "cohort": c, "input": f"{c} question {i}"}
        for c in COHORTS
        for i in range(N)
    ]
    (folder / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    outputs = [{"id": r["id"], "output": "a poor answer"} for r in rows]
    (folder / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in outputs))
    sweep = folder / "sweep.yaml"
    sweep.write_text(
        f"""\
name: rl
dataset: {{path: prompts.jsonl}}
eval_judge: "openai:judge@{judge_url}"
evaluators:
  - {{type: criteria, criteria: The answer is good.}}
  - {{type: refusal}}
baseline: sft
checkpoints:
  - {baseline}
  - {{name: other, outputs: sft.jsonl}}
selection:
  objective: {{metrics: [criteria]}}
statistics: {{n_resamples: 200}}
workers: 1
{extra}""",
        encoding="utf-8",
    )
    return sweep


@pytest.fixture
def settings(openai_server: OpenAIServer, tmp_path: Path) -> Settings:
    openai_server.responder = judge
    openai_server.top_logprobs = None
    return settings_for(openai_server, tmp_path / "heldout.db")


@pytest.fixture
def sweep(tmp_path: Path, openai_server: OpenAIServer) -> Path:
    return write_sweep(tmp_path, openai_server.base_url, "{name: sft, outputs: sft.jsonl}")


def make(sweep: Path, settings: Settings, store: Store, **options: Any) -> TrainingEval:
    folder = sweep.parent / "training"
    return TrainingEval(
        sweep, name="run 1", folder=folder, store=store, settings=settings, **options
    )


def test_the_draw_is_seeded_per_cohort_and_ignores_the_file_order(
    tmp_path: Path, sweep: Path, settings: Settings, sqlite_store: Store
) -> None:
    drawn = make(sweep, settings, sqlite_store, max_prompts=2).prompts
    assert [len(drawn.filter(cohorts=c)) for c in COHORTS] == [2, 2, 2]
    # The same prompts from a shuffled file; another seed draws others.
    lines = (tmp_path / "prompts.jsonl").read_text().splitlines()
    (tmp_path / "prompts.jsonl").write_text("\n".join(reversed(lines)) + "\n")
    shuffled = make(sweep, settings, sqlite_store, max_prompts=2).prompts
    assert sorted(shuffled.ids) == sorted(drawn.ids)
    others = [make(sweep, settings, sqlite_store, max_prompts=2, seed=s).prompts for s in (1, 2)]
    assert any(sorted(o.ids) != sorted(drawn.ids) for o in others)
    assert len(make(sweep, settings, sqlite_store, max_prompts=100).prompts) == 3 * N
    narrowed = make(sweep, settings, sqlite_store, cohorts=["honesty"], max_prompts=3)
    assert [s.cohort for s in narrowed.prompts] == ["honesty"] * 3


def test_options_that_name_nothing_are_refused(
    sweep: Path, settings: Settings, sqlite_store: Store
) -> None:
    with pytest.raises(ConfigError, match="max_prompts must be at least 1"):
        make(sweep, settings, sqlite_store, max_prompts=0)
    with pytest.raises(DataError, match="no cohort 'safety'"):
        make(sweep, settings, sqlite_store, cohorts=["safety"])
    with pytest.raises(ConfigError, match="no evaluator of type 'toxicity'"):
        make(sweep, settings, sqlite_store, evaluators=["toxicity"])
    trained = settings.model_copy(update={"training_judge": "openai:judge"})
    with pytest.raises(ConfigError, match="is the training judge"):
        make(sweep, trained, sqlite_store)

    evaluation = make(sweep, settings, sqlite_store, max_prompts=1)
    with pytest.raises(ConfigError, match="give its outputs or an endpoint"):
        evaluation.evaluate("step-1")
    with pytest.raises(ConfigError, match="is the name of the sweep's baseline"):
        evaluation.evaluate("sft", {})
    with pytest.raises(DataError, match="no output for 3 prompt"):
        evaluation.evaluate("step-1", {})


def test_given_outputs_are_judged_against_the_baseline_and_kept_once(
    sweep: Path, settings: Settings, sqlite_store: Store, openai_server: OpenAIServer
) -> None:
    evaluation = make(sweep, settings, sqlite_store, evaluators=["criteria"], max_prompts=2)
    todo = evaluation.missing_outputs("step-5")
    assert [s.id for s in todo] == list(evaluation.prompts.ids)

    report = evaluation.evaluate(
        "step-5", {s.id: "a good answer" for s in todo}, params={"step": 5, "beta": 0.1}
    )

    assert report.run_id == evaluation.run_id
    assert openai_server.requests == 2 * 6  # the baseline's rows and the checkpoint's
    metrics = report.metrics()
    for cohort in (*COHORTS, "all"):
        assert metrics[f"heldout/{cohort}/criteria"] == 1.0
        assert metrics[f"heldout/{cohort}/criteria/delta"] == 1.0  # the baseline is poor
        assert metrics[f"heldout/{cohort}/criteria/errors"] == 0.0
        assert metrics[f"heldout/{cohort}/criteria/eval_fail_rate"] == 0.0
    assert not any("refusal" in key for key in metrics)
    assert evaluation.missing_outputs("step-5") == []
    # A save of the same step again (a resumed training run) keeps what was stored:
    # new outputs are not asked for, and nothing is judged again.
    again = evaluation.evaluate("step-5", {}, params={"step": 5})
    assert openai_server.requests == 2 * 6
    assert again.rows == report.rows
    # The run's sweep lists the baseline and the checkpoint, without the selection:
    # a subset of the evaluators may not have what it names.
    run = sqlite_store.get_run(evaluation.run_id)
    assert run is not None
    stored = SweepConfig.model_validate(run.config["sweep"])
    assert [(c.name, c.params) for c in stored.checkpoints] == [
        ("sft", {}),
        ("step-5", {"step": 5}),
    ]
    assert stored.selection is None
    assert [e.type for e in stored.evaluators] == ["criteria"]


def test_a_baseline_served_by_an_endpoint_is_generated_once(
    tmp_path: Path, settings: Settings, sqlite_store: Store, openai_server: OpenAIServer
) -> None:
    with OpenAIServer(responder=policy) as served:
        baseline = f'{{name: sft, endpoint: "openai:sft@{served.base_url}"}}'
        sweep = write_sweep(tmp_path, openai_server.base_url, baseline)
        evaluation = make(sweep, settings, sqlite_store, max_prompts=1)
        for step in (1, 2):
            outputs = {s.id: "a poor answer" for s in evaluation.missing_outputs(f"step-{step}")}
            report = evaluation.evaluate(f"step-{step}", outputs)
            assert report.metrics()["heldout/all/criteria/delta"] == -1.0
        assert served.requests == 3  # one prompt per cohort, at the first save only
        # Every cohort and evaluator is evaluated: the sweep keeps its selection.
        run = sqlite_store.get_run(evaluation.run_id)
        assert run is not None
        assert SweepConfig.model_validate(run.config["sweep"]).selection is not None
