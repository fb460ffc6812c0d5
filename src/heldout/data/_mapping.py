"""Column mappings: which source column holds each field of a Sample.

A source row is a dict (a JSON object, a CSV record, a Parquet row). A column name may
address a nested key with dots (``meta.source``); a key that itself holds a dot is
matched first, so a flattened CSV header ``meta.source`` works as well.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from heldout._errors import DataError
from heldout.data._sample import Sample

Row = dict[str, Any]

_MAX_REPR = 60


class ColumnMapping(BaseModel):
    """Which source column holds each Sample field.

    Only ``id`` and ``input`` must be present in every row; a missing optional column
    leaves its field None (``cohort``: the loader's ``cohort=`` or ``"default"``).

    Example:
        ``ColumnMapping(input="prompt", output="response", cohort="meta.split")``
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default="id", min_length=1)
    """The column holding the row id (a string, or an integer made a string)."""
    cohort: str = Field(default="cohort", min_length=1)
    """The column holding the cohort name."""
    input: str = Field(default="input", min_length=1)
    """The column holding the prompt."""
    output: str = Field(default="output", min_length=1)
    """The column holding the policy's answer."""
    context: str = Field(default="context", min_length=1)
    """The column holding the context: a string, or a list of strings joined with
    blank lines (the list itself is kept in ``metadata["context_list"]``)."""
    reference: str = Field(default="reference", min_length=1)
    """The column holding the reference answer."""
    metadata: list[str] | Literal["rest"] = "rest"
    """The columns copied into ``Sample.metadata``, or ``"rest"``: every column not
    mapped above (a ``metadata`` object column is unpacked, so files written by
    ``Dataset.to_jsonl`` read back as they were)."""

    @field_validator("metadata")
    @classmethod
    def _unique_metadata(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list):
            if any(not name for name in value):
                raise ValueError("metadata column names must not be empty")
            twice = sorted(name for name, count in Counter(value).items() if count > 1)
            if twice:
                raise ValueError(f"metadata lists {', '.join(map(repr, twice))} twice")
        return value

    def field_columns(self) -> dict[str, str]:
        """The Sample field each column maps to, as ``{field: column}``."""
        return {
            "id": self.id,
            "cohort": self.cohort,
            "input": self.input,
            "output": self.output,
            "context": self.context,
            "reference": self.reference,
        }


def lookup(row: Row, column: str) -> tuple[bool, Any]:
    """Find ``column`` in ``row``, walking dotted paths into nested objects.

    Returns:
        ``(found, value)``; ``value`` is None when not found.
    """
    if column in row:
        return True, row[column]
    head, dot, tail = column.partition(".")
    if dot and tail and isinstance(row.get(head), dict):
        return lookup(row[head], tail)
    return False, None


def without(row: Row, column: str) -> Row:
    """A copy of ``row`` without ``column`` (dotted paths reach nested objects).

    The source row is left untouched; a nested object emptied by the removal is dropped.
    """
    if column in row:
        return {key: value for key, value in row.items() if key != column}
    head, dot, tail = column.partition(".")
    if not (dot and tail and isinstance(row.get(head), dict)):
        return row
    inner = without(row[head], tail)
    out = dict(row)
    if inner:
        out[head] = inner
    else:
        del out[head]
    return out


def row_to_sample(
    row: Row,
    mapping: ColumnMapping,
    *,
    cohort: str | None,
    path: str,
    line: int,
) -> Sample:
    """Build a Sample from one source row.

    Args:
        row: The source row.
        mapping: Which column holds which field.
        cohort: The cohort for a row that names none (None: ``"default"``).
        path: The source, for error messages.
        line: The 1-based line or row number, for error messages.

    Raises:
        DataError: A required field is missing, a value has the wrong type, or the id
            is empty. The message names the file, line, field and mapped column.
    """
    reader = _RowReader(row, mapping, path=path, line=line)
    fields: dict[str, Any] = {
        "id": reader.id(),
        "input": reader.text("input", required=True),
        "output": reader.text("output"),
        "reference": reader.text("reference"),
    }
    row_cohort = reader.text("cohort")
    fields["cohort"] = row_cohort or cohort or "default"
    context, context_list = reader.context()
    fields["context"] = context
    metadata = reader.metadata()
    if context_list is not None:
        if "context_list" in metadata:
            raise reader.error(
                "context",
                "context is a list, but the row already has a 'context_list' metadata "
                "column; rename that column",
            )
        metadata["context_list"] = context_list
    fields["metadata"] = metadata
    try:
        return Sample(**fields)
    except ValidationError as exc:  # the checks above should make this unreachable
        raise DataError(f"row is not a valid sample: {exc}", path=path, line=line) from exc


class _RowReader:
    """Reads the fields of one row, raising DataErrors that say where."""

    def __init__(self, row: Row, mapping: ColumnMapping, *, path: str, line: int) -> None:
        self._row = row
        self._mapping = mapping
        self._columns = mapping.field_columns()
        self._path = path
        self._line = line

    def error(self, field: str, message: str) -> DataError:
        return DataError(message, path=self._path, line=self._line, field=field)

    def _column_phrase(self, field: str) -> str:
        column = self._columns[field]
        if column == field:
            return f"column {column!r}"
        return f"column {column!r} (mapped to {field!r})"

    def _missing(self, field: str) -> DataError:
        present = ", ".join(repr(key) for key in list(self._row)[:12])
        more = ", ..." if len(self._row) > 12 else ""
        return self.error(
            field,
            f"missing required field {field!r}: no value in {self._column_phrase(field)}; "
            f"columns present: {present or 'none'}{more}. "
            "Set ColumnMapping to name the right column.",
        )

    def _wrong_type(self, field: str, expected: str, value: Any) -> DataError:
        shown = repr(value)
        if len(shown) > _MAX_REPR:
            shown = shown[: _MAX_REPR - 3] + "..."
        return self.error(
            field,
            f"{field} must be {expected}, got {type(value).__name__} {shown} "
            f"in {self._column_phrase(field)}",
        )

    def _value(self, field: str) -> Any:
        return lookup(self._row, self._columns[field])[1]

    def id(self) -> str:
        value = self._value("id")
        if value is None:
            raise self._missing("id")
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise self._wrong_type("id", "a string or an integer", value)
        if not value.strip():
            raise self.error(
                "id", f"id is empty in {self._column_phrase('id')}; every sample needs an id"
            )
        return value

    def text(self, field: str, *, required: bool = False) -> str | None:
        value = self._value(field)
        if value is None:
            if required:
                raise self._missing(field)
            return None
        if not isinstance(value, str):
            raise self._wrong_type(field, "a string", value)
        return value

    def context(self) -> tuple[str | None, list[str] | None]:
        """The context text, and the list it was joined from (None for a string)."""
        value = self._value("context")
        if value is None or isinstance(value, str):
            return value, None
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return ("\n\n".join(value) or None), list(value)
        raise self._wrong_type("context", "a string or a list of strings", value)

    def metadata(self) -> dict[str, Any]:
        if self._mapping.metadata == "rest":
            return self._rest()
        metadata: dict[str, Any] = {}
        for column in self._mapping.metadata:
            found, value = lookup(self._row, column)
            if not found:
                raise self.error(
                    column,
                    f"metadata column {column!r} listed in the mapping is missing; "
                    "list only columns every row has, or use metadata='rest'",
                )
            metadata[column] = value
        return metadata

    def _rest(self) -> dict[str, Any]:
        rest = self._row
        for column in self._columns.values():
            rest = without(rest, column)
        packed = rest.get("metadata")
        if not isinstance(packed, dict):
            return dict(rest)
        others = {key: value for key, value in rest.items() if key != "metadata"}
        clash = sorted(set(others) & set(packed))
        if clash:
            raise self.error(
                "metadata",
                f"key {clash[0]!r} is both a column and a key of the 'metadata' object; "
                "rename one of them",
            )
        return {**others, **packed}
