"""Verdicts from stored scores, from the runs of a store and from imported files; the
samples of runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from heldout import ConfigError, Sample, Store
from heldout.analysis import (
    samples_from_runs,
    verdicts_from_runs,
    verdicts_from_scores,
    verdicts_from_sources,
)
from heldout.evaluators import Score
from heldout.store import StoredScore


def stored(
    sample_id: str,
    status: str,
    value: float | None = None,
    *,
    passed: bool | None = None,
    judge: str = "openai:m",
    evaluator: str = "criteria",
    checkpoint: str | None = None,
    metadata: dict[str, object] | None = None,
) -> StoredScore:
    return StoredScore(
        sample_id=sample_id,
        cohort="help",
        evaluator=evaluator,
        status=status,  # type: ignore[arg-type]
        value=value,
        passed=passed,
        reason="r",
        error="boom" if status == "error" else None,
        error_kind="timeout" if status == "error" else None,
        judge=judge,
        checkpoint=checkpoint,
        sample_key=sample_id if checkpoint is None else f"{checkpoint}/{sample_id}",
        metadata=metadata or {},
    )


def test_scores_become_verdicts_and_skips_are_not_verdicts() -> None:
    scores = [
        stored("a", "ok", 0.9, passed=True, metadata={"p_yes": 0.9}, checkpoint="s1"),
        stored("b", "ok", 0.3),
        stored("c", "error"),
        stored("d", "skipped"),
        stored("e", "ok", 0.7, evaluator="other"),
    ]
    verdicts = verdicts_from_scores(scores, evaluator="criteria")
    assert [(x.id, x.status, x.label, x.score) for x in verdicts] == [
        ("a", "ok", "pass", 0.9),
        ("b", "ok", "fail", 0.3),
        ("c", "error", None, None),
    ]
    assert verdicts[0].probability == 0.9
    assert verdicts[1].probability is None
    assert verdicts[0].checkpoint == "s1"
    assert verdicts[0].judge == "openai:m"
    assert verdicts[2].error == "boom"
    renamed = verdicts_from_scores(scores[:1], judge="eval", axis="helpfulness")
    assert (renamed[0].judge, renamed[0].axis) == ("eval", "helpfulness")
    plain = Score(sample_id="z", cohort="c", evaluator="e", status="ok", value=0.5)
    assert verdicts_from_scores([plain])[0].checkpoint is None


def test_verdicts_from_runs_name_each_run_after_its_judge(sqlite_store: Store) -> None:
    for run_id, judge in (("run-a", "openai:a"), ("run-b", "openai:b"), ("run-c", "openai:a")):
        sqlite_store.begin_run(run_id, name=run_id, kind="eval", config={})
        sqlite_store.write_scores(
            run_id,
            [
                Score(
                    sample_id="x",
                    cohort="c",
                    evaluator="criteria",
                    status="ok",
                    value=1.0,
                    passed=True,
                    judge=judge,
                ),
                Score(
                    sample_id="y",
                    cohort="c",
                    evaluator="criteria",
                    status="ok",
                    value=0.0,
                    passed=False,
                    judge=judge,
                ),
            ],
        )
    judged = verdicts_from_runs(sqlite_store, ["run-a", "run-b", "run-c"])
    assert list(judged) == ["openai:a", "openai:b", "openai:a (run-c)"]
    assert [x.label for x in judged["openai:b"]] == ["pass", "fail"]
    with pytest.raises(ConfigError, match="no run 'nope'"):
        verdicts_from_runs(sqlite_store, ["nope"])
    with pytest.raises(ConfigError, match=r"no scores of evaluator 'toxicity'.*criteria"):
        verdicts_from_runs(sqlite_store, ["run-a"], evaluator="toxicity")
    with pytest.raises(ConfigError, match="named twice"):
        verdicts_from_runs(sqlite_store, ["run-a", "run-a"])


def test_sources_add_imported_files_named_after_them(sqlite_store: Store, tmp_path: Path) -> None:
    sqlite_store.begin_run("run-a", name="a", kind="eval", config={})
    score = Score(sample_id="x", cohort="c", evaluator="criteria", status="ok", value=1.0)
    sqlite_store.write_scores("run-a", [score.model_copy(update={"judge": "openai:a"})])
    training = tmp_path / "training.jsonl"
    training.write_text('{"id": "x", "label": "fail"}\n', encoding="utf-8")
    judged = verdicts_from_sources(sqlite_store, ["run-a"], files=[training], evaluator="criteria")
    assert list(judged) == ["openai:a", "training"]
    (imported,) = judged["training"]
    assert (imported.judge, imported.axis, imported.label) == ("training", "criteria", "fail")
    clash = tmp_path / "openai:a.jsonl"
    clash.write_text('{"id": "x", "label": "fail"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="two judges are named 'openai:a'"):
        verdicts_from_sources(sqlite_store, ["run-a"], files=[clash])


def test_samples_of_several_runs_once_per_checkpoint_and_id(sqlite_store: Store) -> None:
    for run_id, output in (("run-a", "first"), ("run-b", "second")):
        sqlite_store.begin_run(run_id, name=run_id, kind="regress", config={})
        for checkpoint in ("sft", "step-1"):
            sqlite_store.put_samples(
                run_id, [Sample(id="q", input="Q", output=output)], checkpoint=checkpoint
            )
    samples = samples_from_runs(sqlite_store, ["run-a", "run-b"])
    assert sorted((s.checkpoint, s.output) for s in samples) == [
        ("sft", "first"),
        ("step-1", "first"),
    ]
