"""The ``heldout`` command line."""

from heldout.cli._main import app, main

__all__ = ["app", "main"]
