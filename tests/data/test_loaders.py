"""Loaders: JSON lines, JSON arrays, CSV and Parquet, and the errors they raise."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from heldout import DataError
from heldout.data import ColumnMapping, Dataset, iter_jsonl, iter_samples

from .conftest import WriteJsonl, WriteText


def where(path: Path, line: int | None = None, field: str | None = None) -> str:
    """The start of a DataError message, as a regex."""
    text = str(path) if line is None else f"{path}:{line}"
    if field is not None:
        text += f" field {field!r}"
    return "^" + re.escape(text + ": ")


# -- JSON lines ----------------------------------------------------------------------


def test_jsonl_loads_in_order_and_skips_blank_lines(write_text: WriteText) -> None:
    path = write_text(
        "helpfulness.jsonl",
        '{"id": "a", "input": "Q1", "output": "A1"}\n\n   \n{"id": 2, "input": "Q2"}\n',
    )
    dataset = Dataset.from_jsonl(path)
    assert dataset.name == "helpfulness"
    assert dataset.ids == ("a", "2")
    assert dataset[0].output == "A1"
    assert dataset[1].output is None


def test_jsonl_with_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "a", "input": "Q"}\r\n{"id": "b", "input": "Q"}\r\n')
    assert Dataset.from_jsonl(path).ids == ("a", "b")


def test_jsonl_invalid_json_names_the_line_counting_blank_lines(write_text: WriteText) -> None:
    path = write_text("bad.jsonl", '{"id": "a", "input": "Q"}\n\n{"id": "b", "input": \n')
    with pytest.raises(DataError, match=where(path, 3) + "invalid JSON") as caught:
        Dataset.from_jsonl(path)
    assert (caught.value.path, caught.value.line) == (str(path), 3)


def test_jsonl_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id": "a", "input": "Q"}\n{"id": "b", "input": "caf\xe9"}\n')
    with pytest.raises(DataError, match=where(path, 2) + "not valid UTF-8"):
        Dataset.from_jsonl(path)


@pytest.mark.parametrize(
    ("row", "kind"), [("[1, 2]", "an array"), ('"text"', "a string"), ("7", "a number")]
)
def test_jsonl_row_that_is_not_an_object(write_text: WriteText, row: str, kind: str) -> None:
    path = write_text("rows.jsonl", '{"id": "a", "input": "Q"}\n' + row + "\n")
    with pytest.raises(DataError, match=where(path, 2) + f"row is {kind}, expected a JSON object"):
        Dataset.from_jsonl(path)


def test_missing_id_names_field_and_column(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl("x.jsonl", [{"id": "a", "input": "Q"}, {"input": "Q"}])
    with pytest.raises(
        DataError, match=where(path, 2, "id") + "missing required field 'id'.*column 'id'"
    ):
        Dataset.from_jsonl(path)


def test_missing_input_names_the_mapped_column(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl("x.jsonl", [{"uid": "a", "question": "Q"}, {"uid": "b", "prompt": "Q"}])
    mapping = ColumnMapping(id="uid", input="question")
    expected = where(path, 2, "input") + (
        r"missing required field 'input': no value in column 'question' \(mapped to 'input'\); "
        r"columns present: 'uid', 'prompt'"
    )
    with pytest.raises(DataError, match=expected):
        Dataset.from_jsonl(path, mapping=mapping)


def test_null_input_is_missing(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl("x.jsonl", [{"id": "a", "input": None}])
    with pytest.raises(DataError, match=where(path, 1, "input") + "missing required field"):
        Dataset.from_jsonl(path)


def test_wrong_type_names_file_line_and_field(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl("x.jsonl", [{"id": "a", "input": "Q"}, {"id": "b", "input": 12}])
    with pytest.raises(
        DataError, match=where(path, 2, "input") + "input must be a string, got int 12"
    ):
        Dataset.from_jsonl(path)


@pytest.mark.parametrize("empty_id", ["", "   "])
def test_empty_id(write_jsonl: WriteJsonl, empty_id: str) -> None:
    path = write_jsonl("x.jsonl", [{"id": empty_id, "input": "Q"}])
    with pytest.raises(DataError, match=where(path, 1, "id") + "id is empty in column 'id'"):
        Dataset.from_jsonl(path)


def test_duplicate_ids_name_both_lines(write_text: WriteText) -> None:
    path = write_text(
        "dup.jsonl",
        '{"id": "a", "input": "Q"}\n{"id": "b", "input": "Q"}\n\n{"id": "a", "input": "Q"}\n',
    )
    expected = where(path, 4, "id") + "duplicate id 'a': first on line 1, again on line 4"
    with pytest.raises(DataError, match=expected):
        Dataset.from_jsonl(path)


def test_an_integer_id_and_its_string_are_duplicates(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl("dup.jsonl", [{"id": 1, "input": "Q"}, {"id": "1", "input": "Q"}])
    with pytest.raises(DataError, match="duplicate id '1': first on line 1, again on line 2"):
        Dataset.from_jsonl(path)


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_jsonl_file(write_text: WriteText, text: str) -> None:
    path = write_text("empty.jsonl", text)
    with pytest.raises(DataError, match=where(path) + "file holds no rows"):
        Dataset.from_jsonl(path)


def test_iter_jsonl_streams_rows_before_reaching_a_bad_line(write_text: WriteText) -> None:
    path = write_text(
        "big.jsonl", '{"id": "a", "input": "Q"}\n{"id": "b", "input": "Q"}\nnot json\n'
    )
    samples = iter_jsonl(path)
    assert next(samples).id == "a"
    assert next(samples).id == "b"
    with pytest.raises(DataError, match=where(path, 3)):
        next(samples)


def test_iter_jsonl_reports_a_missing_file_at_once(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        iter_jsonl(tmp_path / "missing.jsonl")


# -- JSON arrays ---------------------------------------------------------------------


def test_json_array_with_line_numbers(write_text: WriteText) -> None:
    path = write_text("arr.json", '[\n  {"id": "a", "input": "Q"},\n\n  {"id": "b"}\n]\n')
    with pytest.raises(DataError, match=where(path, 4, "input")):
        Dataset.load(path)
    path.write_text('[{"id": "a", "input": "Q"}, {"id": "b", "input": "Q"}]')
    assert Dataset.load(path).ids == ("a", "b")


def test_json_array_invalid_json_names_the_line(write_text: WriteText) -> None:
    path = write_text("arr.json", '[\n  {"id": "a", "input": "Q"},\n  {"id": "b" "input": "Q"}\n]')
    with pytest.raises(DataError, match=where(path, 3) + "invalid JSON"):
        Dataset.load(path)


def test_json_array_of_non_objects(write_text: WriteText) -> None:
    path = write_text("arr.json", '[\n  {"id": "a", "input": "Q"},\n  ["b"]\n]')
    with pytest.raises(DataError, match=where(path, 3) + "row is an array"):
        Dataset.load(path)


def test_json_array_with_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b'\xef\xbb\xbf [{"id": "a", "input": "Q"}]')
    assert Dataset.load(path).ids == ("a",)


def test_json_array_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'[{"id": "a", "input": "caf\xe9"}]')
    with pytest.raises(DataError, match=where(path) + "not valid UTF-8"):
        Dataset.load(path)


def test_json_array_with_trailing_data(write_text: WriteText) -> None:
    path = write_text("arr.json", '[{"id": "a", "input": "Q"}]\n\n{"id": "b"}')
    with pytest.raises(DataError, match=where(path, 3) + "invalid JSON: extra data"):
        Dataset.load(path)


def test_empty_json_array(write_text: WriteText) -> None:
    path = write_text("arr.json", "[ ]")
    with pytest.raises(DataError, match=where(path) + "file holds no rows"):
        Dataset.load(path)


def test_json_file_holding_json_lines(write_jsonl: WriteJsonl) -> None:
    path = write_jsonl("lines.json", [{"id": "a", "input": "Q"}, {"id": "b", "input": "Q"}])
    assert Dataset.load(path).ids == ("a", "b")


# -- CSV -----------------------------------------------------------------------------


def test_csv_loads_with_empty_cells_as_none(write_text: WriteText) -> None:
    path = write_text("c.csv", "id,input,output,label\na,Q1,,x\nb,Q2,A2,\n")
    dataset = Dataset.from_csv(path)
    assert [(s.id, s.output, s.metadata) for s in dataset] == [
        ("a", None, {"label": "x"}),
        ("b", "A2", {"label": None}),
    ]


def test_csv_lines_are_physical_lines_with_multiline_records(write_text: WriteText) -> None:
    path = write_text("c.csv", 'id,input\na,"two\nlines"\n\nb,Q\nc,\n')
    with pytest.raises(DataError, match=where(path, 6, "input") + "missing required field"):
        Dataset.from_csv(path)
    path.write_text('id,input\na,"two\nlines"\n\nb,Q\n')
    dataset = Dataset.from_csv(path)
    assert dataset[0].input == "two\nlines"
    assert dataset.ids == ("a", "b")


def test_csv_duplicate_ids_name_both_lines(write_text: WriteText) -> None:
    path = write_text("c.csv", "id,input\na,Q\nb,Q\na,Q\n")
    with pytest.raises(DataError, match=where(path, 4, "id") + "duplicate id 'a': first on line 2"):
        Dataset.from_csv(path)


def test_csv_row_with_the_wrong_number_of_fields(write_text: WriteText) -> None:
    path = write_text("c.csv", "id,input\na,Q\nb,Q,extra\n")
    with pytest.raises(DataError, match=where(path, 3) + "row has 3 fields but the header has 2"):
        Dataset.from_csv(path)


def test_csv_header_with_a_repeated_column(write_text: WriteText) -> None:
    path = write_text("c.csv", "id,input,input\na,Q,R\n")
    with pytest.raises(DataError, match=where(path, 1) + "the header names column 'input' more"):
        Dataset.from_csv(path)


def test_empty_csv_and_header_only_csv(write_text: WriteText) -> None:
    empty = write_text("empty.csv", "")
    with pytest.raises(DataError, match=where(empty) + "file is empty"):
        Dataset.from_csv(empty)
    header_only = write_text("header.csv", "id,input\n")
    with pytest.raises(DataError, match=where(header_only) + "file holds no rows"):
        Dataset.from_csv(header_only)


def test_csv_dotted_header_and_renamed_columns(write_text: WriteText) -> None:
    path = write_text("c.csv", "uid,prompt,meta.split,notes\n1,Q,honesty,n\n")
    mapping = ColumnMapping(id="uid", input="prompt", cohort="meta.split")
    sample = Dataset.load(path, mapping=mapping)[0]
    assert (sample.id, sample.input, sample.cohort, sample.metadata) == (
        "1",
        "Q",
        "honesty",
        {"notes": "n"},
    )


def test_iter_samples_streams_csv(write_text: WriteText) -> None:
    path = write_text("c.csv", "id,input\na,Q\nb,\n")
    samples = iter_samples(path)
    assert next(samples).id == "a"
    with pytest.raises(DataError, match=where(path, 3, "input")):
        next(samples)


# -- Parquet -------------------------------------------------------------------------


def write_parquet(path: Path, rows: list[dict[str, object]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_parquet_with_nested_struct_and_list_context(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "p.parquet",
        [
            {"uid": 1, "prompt": "Q1", "docs": ["d1", "d2"], "meta": {"split": "h", "src": "web"}},
            {"uid": 2, "prompt": "Q2", "docs": ["d3"], "meta": {"split": "x", "src": "book"}},
        ],
    )
    mapping = ColumnMapping(id="uid", input="prompt", context="docs", cohort="meta.split")
    dataset = Dataset.from_parquet(path, mapping=mapping)
    assert dataset.name == "p"
    first = dataset[0]
    assert (first.id, first.input, first.cohort, first.context) == ("1", "Q1", "h", "d1\n\nd2")
    assert first.metadata == {"meta": {"src": "web"}, "context_list": ["d1", "d2"]}
    assert dataset.cohorts == ("h", "x")


def test_parquet_error_names_the_row(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "p.parquet",
        [{"id": "a", "input": "Q"}, {"id": "b", "input": "Q"}, {"id": "c", "input": None}],
    )
    with pytest.raises(DataError, match=where(path, 3, "input") + "missing required field"):
        Dataset.load(path)


def test_parquet_wrong_type_and_duplicates(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "types.parquet", [{"id": "a", "input": 1.5}])
    with pytest.raises(
        DataError, match=where(path, 1, "input") + "input must be a string, got float"
    ):
        Dataset.load(path)
    path = write_parquet(
        tmp_path / "dup.parquet", [{"id": 7, "input": "Q"}, {"id": 7, "input": "Q"}]
    )
    with pytest.raises(DataError, match=where(path, 2, "id") + "duplicate id '7': first on line 1"):
        Dataset.load(path)


def test_parquet_without_rows(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.string()), ("input", pa.string())])
    path = tmp_path / "empty.parquet"
    pq.write_table(schema.empty_table(), path)
    with pytest.raises(DataError, match=where(path) + "file holds no rows"):
        Dataset.load(path)


def test_file_that_is_not_parquet(write_text: WriteText) -> None:
    path = write_text("fake.parquet", "id,input\na,Q\n")
    with pytest.raises(
        DataError, match=where(path) + r"not a readable Parquet file \(after 0 rows\)"
    ):
        Dataset.load(path)


# -- dispatch ------------------------------------------------------------------------


def test_load_dispatches_on_suffix(write_text: WriteText, tmp_path: Path) -> None:
    row = '{"id": "a", "input": "Q"}\n'
    for name in ("x.jsonl", "x.ndjson", "x.json", "X.JSONL"):
        assert Dataset.load(write_text(name, row)).ids == ("a",)
    assert Dataset.load(write_text("x.csv", "id,input\na,Q\n")).ids == ("a",)
    parquet = write_parquet(tmp_path / "x.parquet", [{"id": "a", "input": "Q"}])
    assert Dataset.load(parquet, name="named").name == "named"


def test_explicit_loaders_ignore_the_suffix(write_text: WriteText) -> None:
    assert Dataset.from_jsonl(write_text("rows.txt", '{"id": "a", "input": "Q"}\n')).ids == ("a",)
    assert Dataset.from_csv(write_text("rows.tsv.txt", "id,input\na,Q\n")).ids == ("a",)


def test_unknown_suffix(write_text: WriteText) -> None:
    path = write_text("rows.txt", "hello\n")
    with pytest.raises(
        DataError, match=where(path) + r"unknown file type \('.txt'\); heldout reads .csv"
    ):
        Dataset.load(path)
    bare = write_text("rows", "hello\n")
    with pytest.raises(DataError, match=where(bare) + r"unknown file type \(no suffix\)"):
        Dataset.load(bare)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    for load in (Dataset.load, Dataset.from_jsonl, Dataset.from_csv, Dataset.from_parquet):
        with pytest.raises(DataError, match=where(missing) + "file not found"):
            load(missing)
    with pytest.raises(DataError, match=where(tmp_path) + "not a file"):
        Dataset.load(tmp_path)


def test_cohort_argument_applies_to_files(write_text: WriteText) -> None:
    path = write_text("c.csv", "id,input,cohort\na,Q,\nb,Q,own\n")
    assert [s.cohort for s in Dataset.load(path, cohort="honesty")] == ["honesty", "own"]
