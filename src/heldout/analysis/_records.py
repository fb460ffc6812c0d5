"""Flat records written as CSV or JSON lines, chosen by the file's suffix."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from heldout._errors import ConfigError, DataError
from heldout.data._loaders import StrPath


def write_records(
    records: Sequence[dict[str, Any]], path: StrPath, *, what: str, empty: Sequence[str]
) -> Path:
    """Write ``records`` to ``path``: ``.jsonl`` one object a line, ``.csv`` with a header.

    Model text is written as it is. A spreadsheet may read a cell that starts with ``=``,
    ``+``, ``-`` or ``@`` as a formula: import the CSV as text, or use JSON lines.

    Args:
        records: The rows, all with the same keys (the first row's keys are the columns).
        path: The file; its folder is created.
        what: What is written, for the error message (e.g. "the spot-check").
        empty: The CSV header when there are no records.

    Raises:
        ConfigError: The suffix is neither ``.csv`` nor ``.jsonl``.
        DataError: The file cannot be written.
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ConfigError(f"write {what} as .csv or .jsonl, not {suffix or 'no suffix'!r}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8", newline="") as handle:
            if suffix == ".jsonl":
                for record in records:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                writer = csv.DictWriter(handle, fieldnames=list(records[0] if records else empty))
                writer.writeheader()
                writer.writerows(records)
    except OSError as exc:
        raise DataError(f"cannot write file: {exc.strerror}", path=os.fspath(path)) from exc
    return out
