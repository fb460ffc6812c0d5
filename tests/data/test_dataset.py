"""Dataset: the collection, new datasets from old, fingerprint, round trip, public API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import heldout.data
from heldout import DataError
from heldout.data import ColumnMapping, Dataset, Sample


def make(*ids_and_cohorts: tuple[str, str], name: str = "toy") -> Dataset:
    return Dataset.from_samples(
        (Sample(id=i, cohort=c, input=f"prompt {i}") for i, c in ids_and_cohorts), name=name
    )


@pytest.fixture
def toy() -> Dataset:
    return make(("a", "helpfulness"), ("b", "honesty"), ("c", "helpfulness"))


# -- the collection ------------------------------------------------------------------


def test_sequence_behaviour(toy: Dataset) -> None:
    assert len(toy) == 3
    assert [s.id for s in toy] == ["a", "b", "c"]
    assert toy[1].id == "b"
    assert toy[-1].id == "c"
    assert toy.ids == ("a", "b", "c")
    assert toy[1] in toy
    with pytest.raises(IndexError):
        toy[3]


def test_slice_is_a_dataset(toy: Dataset) -> None:
    head = toy[:2]
    assert isinstance(head, Dataset)
    assert (head.name, head.ids) == ("toy", ("a", "b"))


def test_name_cohorts_and_repr(toy: Dataset) -> None:
    assert toy.name == "toy"
    assert toy.cohorts == ("helpfulness", "honesty")
    assert repr(toy) == "Dataset(name='toy', samples=3, cohorts=['helpfulness', 'honesty'])"


def test_by_id(toy: Dataset) -> None:
    assert toy.by_id("c").cohort == "helpfulness"
    with pytest.raises(DataError, match="dataset 'toy' has no sample with id 'z'"):
        toy.by_id("z")


def test_is_immutable(toy: Dataset) -> None:
    with pytest.raises(AttributeError):
        toy.name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        toy.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        hash(toy)


def test_equality(toy: Dataset) -> None:
    assert toy == make(("a", "helpfulness"), ("b", "honesty"), ("c", "helpfulness"))
    assert toy != make(("a", "helpfulness"), ("b", "honesty"), ("c", "helpfulness"), name="x")
    assert toy != list(toy)


def test_duplicate_ids_in_samples() -> None:
    with pytest.raises(DataError, match="duplicate id 'a' at positions 1 and 3"):
        make(("a", "x"), ("b", "x"), ("a", "y"))


def test_from_samples_checks_the_type() -> None:
    with pytest.raises(TypeError, match="a Dataset holds Samples, got dict"):
        Dataset.from_samples([{"id": "a", "input": "Q"}])  # type: ignore[list-item]


def test_empty_dataset_from_memory() -> None:
    assert len(Dataset.from_samples([])) == 0
    assert Dataset.from_records([]).cohorts == ()


def test_from_records_errors_name_the_record() -> None:
    with pytest.raises(DataError, match=r"^<records>:2: row is an array"):
        Dataset.from_records([{"id": "a", "input": "Q"}, ["b"]])  # type: ignore[list-item]
    with pytest.raises(DataError, match=r"^<records>:2 field 'id': duplicate id 'a'"):
        Dataset.from_records([{"id": "a", "input": "Q"}, {"id": "a", "input": "Q"}])


# -- new datasets from old -----------------------------------------------------------


def test_filter_by_cohorts(toy: Dataset) -> None:
    assert toy.filter(cohorts=["helpfulness"]).ids == ("a", "c")
    assert toy.filter(cohorts="honesty").ids == ("b",)
    assert toy.filter(cohorts={"honesty", "helpfulness"}) == toy


def test_filter_unknown_cohort_lists_the_available(toy: Dataset) -> None:
    with pytest.raises(DataError, match=r"no cohort 'harm'\. Available: 'helpfulness', 'honesty'"):
        toy.filter(cohorts=["helpfulness", "harm"])


def test_with_outputs(toy: Dataset) -> None:
    answered = toy.with_outputs({"a": "answer a", "c": "answer c"})
    assert [s.output for s in answered] == ["answer a", None, "answer c"]
    assert [s.output for s in toy] == [None, None, None], "the original is unchanged"
    assert answered.with_outputs({"a": "again"}).by_id("a").output == "again"


def test_with_outputs_unknown_id_or_wrong_type(toy: Dataset) -> None:
    with pytest.raises(DataError, match=r"field 'id': dataset 'toy' has no sample with id 'z' \(1"):
        toy.with_outputs({"a": "x", "z": "y"})
    with pytest.raises(DataError, match="output for id 'a' must be a string, got int"):
        toy.with_outputs({"a": 3})  # type: ignore[dict-item]


# -- fingerprint ---------------------------------------------------------------------


def test_fingerprint_is_sensitive_to_content(toy: Dataset) -> None:
    base = toy.fingerprint()
    assert len(base) == 64
    assert toy.with_outputs({"a": "x"}).fingerprint() != base
    assert toy.filter(cohorts="honesty").fingerprint() != base
    renamed = make(("a", "helpfulness"), ("b", "honesty"), ("c", "other"))
    assert renamed.fingerprint() != base
    with_metadata = Dataset.from_samples(
        [toy[0].model_copy(update={"metadata": {"k": 1}}), toy[1], toy[2]]
    )
    assert with_metadata.fingerprint() != base


def test_fingerprint_ignores_name_and_order(toy: Dataset) -> None:
    shuffled = Dataset.from_samples([toy[2], toy[0], toy[1]], name="other")
    assert shuffled.fingerprint() == toy.fingerprint()


def test_fingerprint_ignores_metadata_key_order() -> None:
    one = Dataset.from_records([{"id": "a", "input": "Q", "x": 1, "y": 2}])
    two = Dataset.from_records([{"y": 2, "input": "Q", "x": 1, "id": "a"}])
    assert one.fingerprint() == two.fingerprint()


def test_fingerprint_is_stable_across_processes(toy: Dataset) -> None:
    script = (
        "from heldout.data import Dataset, Sample\n"
        "samples = [Sample(id=i, cohort=c, input=f'prompt {i}') for i, c in "
        "[('a', 'helpfulness'), ('b', 'honesty'), ('c', 'helpfulness')]]\n"
        "print(Dataset.from_samples(samples).fingerprint())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    assert result.stdout.strip() == toy.fingerprint()


def test_fingerprint_golden_value() -> None:
    # Stored runs are keyed by this value: if it changes, bump _FINGERPRINT_VERSION and
    # say so in the CHANGELOG rather than editing the expected value silently.
    dataset = Dataset.from_samples([Sample(id="a", input="Q", metadata={"k": [1, "é"]})])
    assert dataset.fingerprint() == GOLDEN


GOLDEN = "eec16408a28def71d1b54fc4b9ff716d51ae3d1102dee74379bb84673f3feb6a"


# -- round trip ----------------------------------------------------------------------


def test_to_jsonl_round_trips(tmp_path: Path) -> None:
    source = Dataset.from_records(
        [
            {"id": 1, "input": "Q1", "output": "A1", "context": ["d1", "d2"], "label": "x"},
            {
                "id": "b",
                "cohort": "honesty",
                "input": "Q2 ünïcode\nline",
                "reference": "R",
                "metadata": {"input": "a metadata key named like a field", "n": 2.5},
            },
            {"id": "c", "input": "Q3", "context": "plain", "nested": {"k": [1, None]}},
        ],
        name="trip",
    )
    path = tmp_path / "trip.jsonl"
    source.to_jsonl(path)
    loaded = Dataset.load(path)
    assert loaded == source
    assert loaded.fingerprint() == source.fingerprint()
    assert path.read_text(encoding="utf-8").count("\n") == 3


def test_parquet_to_jsonl_round_trip(tmp_path: Path) -> None:
    rows = [{"id": "a", "input": "Q", "docs": ["x", "y"], "score": 0.5}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    source = Dataset.load(tmp_path / "in.parquet", mapping=ColumnMapping(context="docs"))
    source.to_jsonl(tmp_path / "out.jsonl")
    assert list(Dataset.load(tmp_path / "out.jsonl")) == list(source)


def test_to_jsonl_unwritable_path(toy: Dataset, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir.jsonl"
    with pytest.raises(DataError, match=f"^{target}: cannot write file"):
        toy.to_jsonl(target)


# -- public API ----------------------------------------------------------------------


def test_all_is_complete_and_sorted() -> None:
    public = {
        name
        for name in vars(heldout.data)
        if not name.startswith("_") and not isinstance(getattr(heldout.data, name), type(heldout))
    }
    assert heldout.data.__all__ == sorted(heldout.data.__all__)
    assert set(heldout.data.__all__) == public
