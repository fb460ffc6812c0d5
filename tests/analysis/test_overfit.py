"""The judge-overfitting flag: a rise under the training judge that the eval judge does
not see, per checkpoint, from stored scores, from imported verdicts, and from a sweep
judged again by the training judge."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from heldout import ConfigError, DataError, Store
from heldout.analysis import (
    OverfitReport,
    judge_overfitting,
    overfitting_from_scores,
    regression_table,
    scores_from_verdicts,
    training_judge_sweep,
)
from heldout.data import JudgeVerdict, load_verdicts
from heldout.regress import RegressionEval
from heldout.store import StoredScore
from heldout.sweep import SweepConfig
from tests.conftest import settings_for
from tests.support.openai_server import OpenAIServer

N = 30
RESAMPLES = 999

# How many of the N prompts pass, per checkpoint, under each judge. The baseline
# passes 10 under both.
TRAINING = {"sft": 10, "step-1": 28, "step-2": 28, "step-3": 10, "step-4": 28}
EVAL = {"sft": 10, "step-1": 11, "step-2": 27, "step-3": 10, "step-4": 0}


def scores(passing: dict[str, int], judge: str, metric: str = "criteria") -> list[StoredScore]:
    return [
        StoredScore(
            sample_id=f"q{i}",
            cohort="help",
            evaluator=metric,
            status="ok",
            value=1.0 if i < n else 0.0,
            passed=i < n,
            judge=judge,
            checkpoint=checkpoint,
            sample_key=f"{checkpoint}/q{i}",
        )
        for checkpoint, n in passing.items()
        for i in range(N)
    ]


@pytest.fixture(scope="module")
def report() -> OverfitReport:
    return overfitting_from_scores(
        scores(TRAINING, "training"),
        scores(EVAL, "eval"),
        baseline="sft",
        n_resamples=RESAMPLES,
    )


def test_a_rise_only_the_training_judge_sees_is_flagged(report: OverfitReport) -> None:
    assert report.flagged == ["step-1", "step-4"]
    assert [c.checkpoint for c in report.checkpoints] == ["step-1", "step-2", "step-3", "step-4"]
    (row,) = [r for r in report.rows if r.checkpoint == "step-1"]
    assert row.status == "flagged"
    assert row.training_delta == pytest.approx(18 / 30)
    assert row.eval_delta == pytest.approx(1 / 30)
    assert row.training_n == row.eval_n == N
    assert "rises under the training judge (+0.600" in row.reason
    assert "does not rise significantly under the eval judge (+0.033" in row.reason
    (step4,) = [r for r in report.rows if r.checkpoint == "step-4"]
    assert "but falls under the eval judge (-0.333" in step4.reason
    assert report.checkpoints[0].flagged_rows == ["help/criteria"]


def test_a_rise_both_judges_see_and_no_rise_are_not_flagged(report: OverfitReport) -> None:
    by_checkpoint = {r.checkpoint: r for r in report.rows}
    assert by_checkpoint["step-2"].status == "ok"
    assert by_checkpoint["step-2"].reason.startswith("rises under both judges")
    assert by_checkpoint["step-3"].status == "ok"
    assert by_checkpoint["step-3"].reason.startswith("no significant rise under the training")


def test_a_checkpoint_the_eval_judge_did_not_score_is_untested() -> None:
    eval_only = {k: v for k, v in EVAL.items() if k != "step-3"}
    result = overfitting_from_scores(
        scores(TRAINING, "training"),
        scores(eval_only, "eval"),
        baseline="sft",
        n_resamples=RESAMPLES,
    )
    (row,) = [r for r in result.rows if r.checkpoint == "step-3"]
    assert (row.status, row.eval_delta) == ("untested", None)
    assert "the eval judge has no row" in row.reason
    assert result.checkpoints[2].untested_rows == 1


def test_differently_named_metrics_are_mapped(tmp_path: Path) -> None:
    rows = [
        {
            "id": f"q{i}",
            "checkpoint": c,
            "cohort": "help",
            "axis": "helpfulness",
            "score": 1.0 if i < n else 0.0,
        }
        for c, n in TRAINING.items()
        for i in range(N)
    ]
    path = tmp_path / "training.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    training = regression_table(
        scores_from_verdicts(load_verdicts(path)), baseline="sft", n_resamples=RESAMPLES
    )
    evaluated = regression_table(scores(EVAL, "eval"), baseline="sft", n_resamples=RESAMPLES)
    with pytest.raises(ConfigError, match="share no metric"):
        judge_overfitting(training, evaluated)
    result = judge_overfitting(training, evaluated, metrics={"helpfulness": "criteria"})
    assert result.flagged == ["step-1", "step-4"]
    assert {(r.metric, r.eval_metric) for r in result.rows} == {("helpfulness", "criteria")}


def test_tables_must_share_the_baseline() -> None:
    training = regression_table(scores(TRAINING, "t"), baseline="sft", n_resamples=RESAMPLES)
    evaluated = regression_table(scores(EVAL, "e"), baseline="step-3", n_resamples=RESAMPLES)
    with pytest.raises(ConfigError, match="different baselines"):
        judge_overfitting(training, evaluated)


def test_imported_verdicts_need_checkpoints_and_scores() -> None:
    with pytest.raises(DataError, match="no checkpoint"):
        scores_from_verdicts([JudgeVerdict(id="a", score=0.5)])
    with pytest.raises(DataError, match="a label but no score"):
        scores_from_verdicts([JudgeVerdict(id="a", label="B", checkpoint="s")])
    (error,) = scores_from_verdicts(
        [JudgeVerdict(id="a", status="error", error="timeout", checkpoint="s")]
    )
    assert (error.status, error.value, error.error) == ("error", None, "timeout")


def output_of(body: dict[str, Any]) -> str:
    found = re.search(r"<output>\n(.*)\n</output>", body["messages"][-1]["content"], re.S)
    assert found is not None
    return found.group(1)


def held_apart_judge(body: dict[str, Any]) -> str:
    return "Yes" if "good" in output_of(body) else "No"


def quirky_training_judge(body: dict[str, Any]) -> str:
    """The training judge's quirk: it likes verbose answers, good or not."""
    return "Yes" if "good" in output_of(body) or "verbose" in output_of(body) else "No"


def test_a_sweep_judged_again_by_the_training_judge_flags_the_quirk(
    tmp_path: Path, sqlite_store: Store
) -> None:
    """End to end: a real sweep under a held-apart eval judge and under the training
    judge (two real OpenAI-protocol servers); step-1 learned the training judge's taste
    for verbosity, step-2 got better."""
    n = 20
    prompts = [{"id": f"q{i}", "cohort": "help", "input": f"question {i}"} for i in range(n)]
    outputs = {
        "sft": ["good answer" if i < 5 else "poor answer" for i in range(n)],
        "step-1": ["good answer" if i < 5 else "verbose poor answer" for i in range(n)],
        "step-2": ["good answer"] * n,
    }
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    for name, texts in outputs.items():
        rows = [{"id": f"q{i}", "output": text} for i, text in enumerate(texts)]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with (
        OpenAIServer(responder=held_apart_judge, top_logprobs=None) as held_apart,
        OpenAIServer(responder=quirky_training_judge, top_logprobs=None) as trainer,
    ):
        sweep = tmp_path / "sweep.yaml"
        sweep.write_text(
            f"""\
name: quirk
dataset: {{path: prompts.jsonl}}
eval_judge: "openai:eval-model@{held_apart.base_url}"
training_judge: "openai:training-model@{trainer.base_url}"
evaluators:
  - {{type: criteria, criteria: The answer is good.}}
baseline: sft
workers: 4
checkpoints:
  - {{name: sft, outputs: sft.jsonl}}
  - {{name: step-1, outputs: step-1.jsonl}}
  - {{name: step-2, outputs: step-2.jsonl}}
statistics: {{n_resamples: {RESAMPLES}}}
""",
            encoding="utf-8",
        )
        settings = settings_for(held_apart)
        evaluation = RegressionEval(sweep, store=sqlite_store, settings=settings)
        result = evaluation.run()
        training = RegressionEval(
            training_judge_sweep(evaluation.sweep), store=sqlite_store, settings=settings
        ).run()
        # Each run asked only its own judge (repeated requests may come from the cache).
        assert {r.body["model"] for r in trainer.log if r.body} == {"training-model"}
        assert {r.body["model"] for r in held_apart.log if r.body} == {"eval-model"}
    assert training.run_id != result.run_id
    report = judge_overfitting(training.table, result.table)
    assert report.flagged == ["step-1"]
    by_checkpoint = {r.checkpoint: r for r in report.rows}
    assert by_checkpoint["step-1"].training_delta == pytest.approx(15 / n)
    assert by_checkpoint["step-1"].eval_delta == pytest.approx(0.0)
    assert by_checkpoint["step-2"].status == "ok"


def test_training_judge_sweep_needs_a_training_judge(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text('{"id": "q", "input": "Q"}\n')
    sweep = SweepConfig.model_validate(
        {
            "name": "s",
            "dataset": {"path": tmp_path / "p.jsonl"},
            "evaluators": [{"type": "criteria", "judge": "openai:eval"}],
            "baseline": "a",
            "checkpoints": [
                {"name": "a", "outputs": "a.jsonl"},
                {"name": "b", "outputs": "b.jsonl"},
            ],
        }
    )
    with pytest.raises(ConfigError, match="names no training_judge"):
        training_judge_sweep(sweep)
    again = training_judge_sweep(sweep, "openai:trainer")
    assert (again.name, again.eval_judge, again.allow_training_judge) == (
        "s@training-judge",
        "openai:trainer",
        True,
    )
    assert again.evaluators[0].judge is None
