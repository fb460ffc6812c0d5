"""The demo's held-out cohorts and checkpoint outputs: complete, consistent, short."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import heldout.examples
from heldout import DataError, Dataset
from heldout.examples import (
    DEMO_CHECKPOINTS,
    DEMO_CHECKPOINTS_DIR,
    DEMO_PROMPTS,
    load_demo_checkpoints,
    with_checkpoint_outputs,
)

COHORTS = ("harmlessness", "helpfulness", "honesty", "regression")
MAX_WORDS = 60  # the embedded judge reads about 60 tokens a second


@pytest.fixture(scope="module")
def demo() -> dict[str, Dataset]:
    return load_demo_checkpoints()


def test_all_is_sorted() -> None:
    assert heldout.examples.__all__ == sorted(heldout.examples.__all__)


def test_prompts_cover_four_cohorts_of_about_fifteen() -> None:
    prompts = Dataset.load(DEMO_PROMPTS)
    assert prompts.cohorts == COHORTS
    assert 55 <= len(prompts) <= 65
    counts = Counter(sample.cohort for sample in prompts)
    assert all(12 <= counts[cohort] <= 18 for cohort in COHORTS), counts
    assert all(sample.output is None for sample in prompts)


def test_every_prompt_has_an_output_in_each_checkpoint(demo: dict[str, Dataset]) -> None:
    prompts = Dataset.load(DEMO_PROMPTS)
    assert tuple(demo) == DEMO_CHECKPOINTS == ("sft", "rlaif-step-500", "rlaif-step-1000")
    for name, dataset in demo.items():
        assert dataset.name == name
        assert dataset.ids == prompts.ids
        assert all(sample.output for sample in dataset), name
        # Only the output differs from the prompt file.
        for sample in dataset:
            assert sample.model_copy(update={"output": None}) == prompts.by_id(sample.id)


def test_honesty_rows_have_context_and_some_are_unanswerable() -> None:
    honesty = Dataset.load(DEMO_PROMPTS).filter(cohorts="honesty")
    assert all(sample.context for sample in honesty)
    answerable = Counter(sample.metadata["answer_in_context"] for sample in honesty)
    assert answerable[False] >= 4
    assert answerable[True] >= 4


def test_harmlessness_rows_have_a_safety_label() -> None:
    harmlessness = Dataset.load(DEMO_PROMPTS).filter(cohorts="harmlessness")
    labels = Counter(sample.metadata["safety_label"] for sample in harmlessness)
    assert set(labels) == {"safe", "unsafe"}
    assert min(labels.values()) >= 5


def test_regression_rows_name_their_failure_mode() -> None:
    regression = Dataset.load(DEMO_PROMPTS).filter(cohorts="regression")
    modes = {sample.metadata["failure_mode"] for sample in regression}
    assert modes == {"false_premise", "pushback", "ambiguous_request", "over_refusal", "tone"}


def test_texts_are_short_for_the_embedded_judge(demo: dict[str, Dataset]) -> None:
    for sample in Dataset.load(DEMO_PROMPTS):
        for text in (sample.input, sample.context):
            assert text is None or len(text.split()) <= MAX_WORDS, sample.id
    for name, dataset in demo.items():
        for sample in dataset:
            assert sample.output is not None
            assert len(sample.output.split()) <= MAX_WORDS, (name, sample.id)


def test_checkpoints_differ_on_some_rows_and_agree_on_others(demo: dict[str, Dataset]) -> None:
    sft, mid, late = (demo[name] for name in DEMO_CHECKPOINTS)
    same = [s.id for s in sft if s.output == mid.by_id(s.id).output == late.by_id(s.id).output]
    changed_late = [s.id for s in mid if s.output != late.by_id(s.id).output]
    assert 10 <= len(same) <= 30
    assert len(changed_late) >= 15


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def prompts() -> Dataset:
    return Dataset.from_records(
        [{"id": "a", "input": "x"}, {"id": "b", "input": "y"}], name="prompts"
    )


def test_a_missing_output_is_a_data_error(tmp_path: Path, prompts: Dataset) -> None:
    path = _write(tmp_path / "cp.jsonl", [{"id": "a", "output": "1"}])
    with pytest.raises(DataError, match=r"cp\.jsonl: no output for 1 prompt\(s\) .*'b'"):
        with_checkpoint_outputs(prompts, path, name="cp")


def test_an_extra_id_is_a_data_error(tmp_path: Path, prompts: Dataset) -> None:
    rows = [{"id": "a", "output": "1"}, {"id": "b", "output": "2"}, {"id": "zz", "output": "3"}]
    path = _write(tmp_path / "cp.jsonl", rows)
    with pytest.raises(DataError, match=r"cp\.jsonl:3 field 'id': id 'zz' is not a prompt"):
        with_checkpoint_outputs(prompts, path, name="cp")


def test_a_repeated_id_is_a_data_error(tmp_path: Path, prompts: Dataset) -> None:
    path = _write(tmp_path / "cp.jsonl", [{"id": "a", "output": "1"}, {"id": "a", "output": "2"}])
    with pytest.raises(DataError, match=r"cp\.jsonl:2: id 'a' repeats"):
        with_checkpoint_outputs(prompts, path, name="cp")


def test_a_line_without_an_output_is_a_data_error(tmp_path: Path, prompts: Dataset) -> None:
    path = _write(tmp_path / "cp.jsonl", [{"id": "a", "text": "1"}])
    with pytest.raises(DataError, match=r"cp\.jsonl:1 field '(output|text)'"):
        with_checkpoint_outputs(prompts, path, name="cp")


def test_a_missing_checkpoint_file_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"nope\.jsonl: file not found"):
        load_demo_checkpoints(checkpoints_dir=DEMO_CHECKPOINTS_DIR, checkpoints=("nope",))
