"""Helpers that write small sample files into a test's tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

WriteText = Callable[[str, str], Path]
WriteJsonl = Callable[[str, list[Any]], Path]


@pytest.fixture
def write_text(tmp_path: Path) -> WriteText:
    """Write ``text`` to ``tmp_path / name`` and return the path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8", newline="")
        return path

    return write


@pytest.fixture
def write_jsonl(write_text: WriteText) -> WriteJsonl:
    """Write one JSON value per line to ``tmp_path / name`` and return the path."""

    def write(name: str, rows: list[Any]) -> Path:
        return write_text(name, "".join(json.dumps(row) + "\n" for row in rows))

    return write
