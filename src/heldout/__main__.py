"""``python -m heldout``: the same as the ``heldout`` command."""

from heldout.cli import main

main()
