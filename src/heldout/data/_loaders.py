"""Reading sample files: JSON lines, JSON arrays, CSV and Parquet, all streamed.

Each reader yields ``(line, row)`` pairs: the 1-based line (JSON, CSV: the physical
line where the record starts, the CSV header being line 1) or row number (Parquet),
and the row as a dict. A new format is one reader function plus one line in
``READERS``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from heldout._errors import DataError
from heldout.data._mapping import ColumnMapping, Row, row_to_sample
from heldout.data._sample import Sample

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

StrPath = str | os.PathLike[str]
RowReader = Callable[[Path, str], Iterator[tuple[int, Row]]]

_PARQUET_BATCH_ROWS = 1024


def _open_text(path: Path, label: str) -> TextIO:
    try:
        # utf-8-sig: files saved by Excel and some editors start with a BOM.
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataError(f"cannot open file: {exc.strerror}", path=label) from exc


_JSON_KINDS = {
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


def _type_name(value: Any) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def as_object(value: Any, label: str, line: int) -> Row:
    """``value`` as a row, or a DataError saying what it is instead."""
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)
    if not isinstance(value, dict):
        raise DataError(
            f"row is {_type_name(value)}, expected a JSON object with one sample",
            path=label,
            line=line,
        )
    return value


def read_jsonl(path: Path, label: str) -> Iterator[tuple[int, Row]]:
    """Read JSON lines one line at a time; blank lines are skipped but counted."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataError(f"cannot open file: {exc.strerror}", path=label) from exc
    with handle:
        for line, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if line == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"not valid UTF-8 (byte {exc.start + 1}); save the file as UTF-8",
                    path=label,
                    line=line,
                ) from exc
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"invalid JSON: {exc.msg} (column {exc.colno}); "
                    "each line must hold one JSON object",
                    path=label,
                    line=line,
                ) from exc
            yield line, as_object(value, label, line)


def read_json(path: Path, label: str) -> Iterator[tuple[int, Row]]:
    """Read a ``.json`` file: a JSON array of objects, or else JSON lines."""
    try:
        with path.open("rb") as handle:
            first = handle.read(256).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError as exc:
        raise DataError(f"cannot open file: {exc.strerror}", path=label) from exc
    if not first.startswith(b"["):
        yield from read_jsonl(path, label)
        return
    with _open_text(path, label) as handle:
        try:
            text = handle.read()
        except UnicodeDecodeError as exc:
            raise DataError("not valid UTF-8; save the file as UTF-8", path=label) from exc
    yield from _json_array(text, label)


def _json_array(text: str, label: str) -> Iterator[tuple[int, Row]]:
    decoder = json.JSONDecoder()
    lines = _LineCounter(text)

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    pos = skip(skip(0) + 1)  # past the opening "["
    if pos < len(text) and text[pos] == "]":
        pos = skip(pos + 1)
    else:
        while True:
            try:
                value, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", path=label, line=exc.lineno) from exc
            line = lines.at(pos)
            yield line, as_object(value, label, line)
            pos = skip(end)
            if pos < len(text) and text[pos] == ",":
                pos = skip(pos + 1)
                continue
            if pos < len(text) and text[pos] == "]":
                pos = skip(pos + 1)
                break
            raise DataError("invalid JSON: expected ',' or ']'", path=label, line=lines.at(pos))
    if pos < len(text):
        raise DataError(
            "invalid JSON: extra data after the closing ']'", path=label, line=lines.at(pos)
        )


class _LineCounter:
    """Line numbers of increasing offsets into ``text``, counted once."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._line = 1

    def at(self, pos: int) -> int:
        self._line += self._text.count("\n", self._pos, pos)
        self._pos = pos
        return self._line


def read_csv(path: Path, label: str) -> Iterator[tuple[int, Row]]:
    """Read CSV with a header row; an empty cell is None (no value)."""
    with _open_text(path, label) as handle:
        reader = csv.reader(handle)
        try:
            yield from _csv_rows(reader, label)
        except csv.Error as exc:
            raise DataError(f"not valid CSV: {exc}", path=label, line=reader.line_num) from exc
        except UnicodeDecodeError as exc:
            raise DataError(
                "not valid UTF-8; save the file as UTF-8", path=label, line=reader.line_num + 1
            ) from exc


def _csv_rows(reader: CsvReader, label: str) -> Iterator[tuple[int, Row]]:
    header: list[str] | None = next(reader, None)
    while header == []:  # blank lines above the header
        header = next(reader, None)
    if header is None:
        raise DataError("file is empty: expected a header row, then one row per sample", path=label)
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise DataError(
            f"the header names column {twice[0]!r} more than once", path=label, line=reader.line_num
        )
    while True:
        start = reader.line_num + 1
        record = next(reader, None)
        if record is None:
            return
        if not record:
            continue  # a blank line is not a row
        if len(record) != len(header):
            raise DataError(
                f"row has {len(record)} fields but the header has {len(header)}; "
                "quote fields that contain commas or line breaks",
                path=label,
                line=start,
            )
        yield (
            start,
            {
                name: (cell if cell != "" else None)
                for name, cell in zip(header, record, strict=True)
            },
        )


def read_parquet(path: Path, label: str) -> Iterator[tuple[int, Row]]:
    """Read Parquet in record batches; nested structs become dicts, lists stay lists."""
    import pyarrow as pa  # heavy: imported only when a Parquet file is read
    import pyarrow.parquet as pq

    number = 0
    try:
        with pq.ParquetFile(path) as parquet:
            for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
                for row in batch.to_pylist():
                    number += 1
                    yield number, row
    except (pa.ArrowException, OSError) as exc:
        # A damaged batch cannot be traced to one row: say how far reading got.
        raise DataError(
            f"not a readable Parquet file (after {number} rows): {exc}", path=label
        ) from exc


READERS: dict[str, RowReader] = {
    ".csv": read_csv,
    ".json": read_json,
    ".jsonl": read_jsonl,
    ".ndjson": read_jsonl,
    ".parquet": read_parquet,
}
"""The reader of each file suffix."""


def check_file(path: StrPath) -> tuple[Path, str]:
    """The path as a Path and as the label errors show.

    Raises:
        DataError: The file does not exist or is a directory.
    """
    label = os.fspath(path)
    file = Path(path)
    if not file.exists():
        raise DataError("file not found; check the path", path=label)
    if not file.is_file():
        raise DataError("not a file (a directory?); give the path of a data file", path=label)
    return file, label


def reader_for(file: Path, label: str) -> RowReader:
    """The reader for the suffix of ``file``.

    Raises:
        DataError: The suffix is not one heldout reads.
    """
    suffix = file.suffix.lower()
    if suffix not in READERS:
        known = ", ".join(sorted(READERS))
        shown = repr(suffix) if suffix else "no suffix"
        raise DataError(f"unknown file type ({shown}); heldout reads {known}", path=label)
    return READERS[suffix]


def samples_from_rows(
    rows: Iterable[tuple[int, Row]],
    mapping: ColumnMapping,
    *,
    cohort: str | None,
    label: str,
    empty: str | None,
) -> Iterator[Sample]:
    """Turn rows into Samples, checking that ids are unique.

    Args:
        rows: ``(line, row)`` pairs.
        mapping: Which column holds which field.
        cohort: The cohort for rows that name none.
        label: The source, for error messages.
        empty: The error message when there are no rows; None allows none.

    Raises:
        DataError: A row is invalid, an id repeats, or there are no rows.
    """
    first_line: dict[str, int] = {}
    for line, row in rows:
        sample = row_to_sample(row, mapping, cohort=cohort, path=label, line=line)
        seen = first_line.setdefault(sample.id, line)
        if seen != line:
            raise DataError(
                f"duplicate id {sample.id!r}: first on line {seen}, again on line {line}; "
                "ids must be unique within a dataset",
                path=label,
                line=line,
                field="id",
            )
        yield sample
    if not first_line and empty is not None:
        raise DataError(empty, path=label)


def iter_samples(
    path: StrPath,
    *,
    mapping: ColumnMapping | None = None,
    cohort: str | None = None,
    reader: RowReader | None = None,
) -> Iterator[Sample]:
    """Stream the samples of a file without holding them all in memory.

    The file type follows the suffix (``.jsonl``, ``.ndjson``, ``.json``, ``.csv``,
    ``.parquet``) unless ``reader`` is given. A missing file or unknown suffix is
    reported at once; a bad row when the iteration reaches it.

    Args:
        path: The file.
        mapping: Which column holds which field (default: same names as Sample).
        cohort: The cohort for rows that name none.
        reader: Read the file with this reader, whatever its suffix.

    Raises:
        DataError: See :meth:`heldout.data.Dataset.load`.
    """
    file, label = check_file(path)
    read = reader if reader is not None else reader_for(file, label)
    return samples_from_rows(
        read(file, label),
        mapping if mapping is not None else ColumnMapping(),
        cohort=cohort,
        label=label,
        empty="file holds no rows; expected one sample per row",
    )


def iter_jsonl(
    path: StrPath, *, mapping: ColumnMapping | None = None, cohort: str | None = None
) -> Iterator[Sample]:
    """Stream the samples of a JSON lines file, one line at a time, whatever its suffix.

    Args:
        path: The file.
        mapping: Which column holds which field (default: same names as Sample).
        cohort: The cohort for rows that name none.

    Raises:
        DataError: See :meth:`heldout.data.Dataset.load`.
    """
    return iter_samples(path, mapping=mapping, cohort=cohort, reader=read_jsonl)
