"""Example data shipped with heldout, used by ``heldout demo``."""

from pathlib import Path

EXAMPLES_DIR = Path(__file__).parent
QUICKSTART = EXAMPLES_DIR / "quickstart.jsonl"

__all__ = ["EXAMPLES_DIR", "QUICKSTART"]
