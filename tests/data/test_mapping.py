"""ColumnMapping: renamed columns, dotted keys, metadata, list context, field types."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from heldout import DataError
from heldout.data import ColumnMapping, Dataset, Sample


def one(record: dict[str, Any], mapping: ColumnMapping | None = None, **kwargs: Any) -> Sample:
    return Dataset.from_records([record], mapping=mapping, **kwargs)[0]


def test_default_mapping_reads_sample_field_names() -> None:
    sample = one(
        {
            "id": "a",
            "cohort": "honesty",
            "input": "Q",
            "output": "A",
            "context": "C",
            "reference": "R",
        }
    )
    assert sample == Sample(
        id="a", cohort="honesty", input="Q", output="A", context="C", reference="R"
    )


def test_renamed_columns() -> None:
    mapping = ColumnMapping(id="uid", input="prompt", output="response", reference="gold")
    sample = one({"uid": "a", "prompt": "Q", "response": "A", "gold": "R"}, mapping)
    assert (sample.id, sample.input, sample.output, sample.reference) == ("a", "Q", "A", "R")
    assert sample.metadata == {}


def test_dotted_keys_reach_nested_objects() -> None:
    mapping = ColumnMapping(id="meta.uid", cohort="meta.split", input="turns.user")
    record = {"meta": {"uid": 7, "split": "harmlessness"}, "turns": {"user": "Q"}}
    sample = one(record, mapping)
    assert (sample.id, sample.cohort, sample.input) == ("7", "harmlessness", "Q")


def test_a_key_holding_a_dot_wins_over_the_nested_path() -> None:
    mapping = ColumnMapping(input="meta.prompt")
    sample = one({"id": "a", "meta.prompt": "flat", "meta": {"prompt": "nested"}}, mapping)
    assert sample.input == "flat"
    assert sample.metadata == {"meta": {"prompt": "nested"}}


def test_metadata_rest_keeps_every_unmapped_column_but_not_mapped_nested_keys() -> None:
    mapping = ColumnMapping(cohort="meta.split")
    record = {"id": "a", "input": "Q", "label": 1, "meta": {"split": "h", "source": "web"}}
    sample = one(record, mapping)
    assert sample.cohort == "h"
    assert sample.metadata == {"label": 1, "meta": {"source": "web"}}
    assert record["meta"] == {"split": "h", "source": "web"}, "the source row is not modified"


def test_metadata_rest_drops_a_nested_object_emptied_by_the_mapping() -> None:
    sample = one(
        {"id": "a", "input": "Q", "meta": {"split": "h"}}, ColumnMapping(cohort="meta.split")
    )
    assert sample.metadata == {}


def test_metadata_rest_unpacks_a_metadata_object() -> None:
    sample = one({"id": "a", "input": "Q", "label": 1, "metadata": {"source": "web"}})
    assert sample.metadata == {"label": 1, "source": "web"}


def test_metadata_object_key_clashing_with_a_column_is_an_error() -> None:
    with pytest.raises(DataError, match=r"<records>:1 field 'metadata': key 'label'"):
        one({"id": "a", "input": "Q", "label": 1, "metadata": {"label": 2}})


def test_metadata_list_keeps_only_the_listed_columns() -> None:
    mapping = ColumnMapping(metadata=["label", "meta.source"])
    sample = one(
        {"id": "a", "input": "Q", "label": 1, "skip": 2, "meta": {"source": "web"}}, mapping
    )
    assert sample.metadata == {"label": 1, "meta.source": "web"}


def test_metadata_list_column_missing_is_an_error() -> None:
    with pytest.raises(DataError, match=r"<records>:1 field 'lable': metadata column 'lable'"):
        one({"id": "a", "input": "Q", "label": 1}, ColumnMapping(metadata=["lable"]))


def test_list_context_is_joined_with_blank_lines_and_kept_in_metadata() -> None:
    sample = one({"id": "a", "input": "Q", "context": ["doc one", "doc two"]})
    assert sample.context == "doc one\n\ndoc two"
    assert sample.metadata == {"context_list": ["doc one", "doc two"]}


def test_empty_list_context_is_no_context() -> None:
    sample = one({"id": "a", "input": "Q", "context": []})
    assert sample.context is None
    assert sample.metadata == {"context_list": []}


def test_list_context_with_a_context_list_column_is_an_error() -> None:
    with pytest.raises(DataError, match=r"field 'context'.*'context_list'"):
        one({"id": "a", "input": "Q", "context": ["x"], "context_list": "mine"})


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"id": "a", "input": 5}, r"field 'input': input must be a string, got int 5"),
        ({"id": "a", "input": "Q", "output": ["x"]}, r"field 'output': output must be a string"),
        (
            {"id": "a", "input": "Q", "context": [1]},
            r"field 'context': context must be a string or a list",
        ),
        ({"id": "a", "input": "Q", "cohort": 3}, r"field 'cohort': cohort must be a string"),
        ({"id": 1.5, "input": "Q"}, r"field 'id': id must be a string or an integer, got float"),
        ({"id": True, "input": "Q"}, r"field 'id': id must be a string or an integer, got bool"),
    ],
)
def test_wrong_types_are_named(record: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError, match=r"<records>:1 " + message):
        one(record)


def test_wrong_type_names_the_mapped_column() -> None:
    with pytest.raises(DataError, match=r"got int 5 in column 'prompt' \(mapped to 'input'\)"):
        one({"id": "a", "prompt": 5}, ColumnMapping(input="prompt"))


def test_integer_ids_become_strings() -> None:
    assert one({"id": 42, "input": "Q"}).id == "42"


def test_cohort_argument_fills_rows_without_one() -> None:
    dataset = Dataset.from_records(
        [
            {"id": "a", "input": "Q"},
            {"id": "b", "input": "Q", "cohort": "own"},
            {"id": "c", "input": "Q", "cohort": ""},
        ],
        cohort="helpfulness",
    )
    assert [s.cohort for s in dataset] == ["helpfulness", "own", "helpfulness"]
    assert Dataset.from_records([{"id": "a", "input": "Q"}])[0].cohort == "default"


def test_mapping_forbids_unknown_settings() -> None:
    with pytest.raises(ValidationError, match="prompt"):
        ColumnMapping(prompt="input")  # type: ignore[call-arg]


def test_mapping_rejects_empty_and_repeated_names() -> None:
    with pytest.raises(ValidationError):
        ColumnMapping(input="")
    with pytest.raises(ValidationError, match="'a' twice"):
        ColumnMapping(metadata=["a", "b", "a"])
    with pytest.raises(ValidationError):
        ColumnMapping(metadata="all")  # type: ignore[arg-type]
