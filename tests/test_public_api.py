"""Every public package exports a complete, sorted ``__all__``."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "heldout",
    "heldout.data",
    "heldout.judges",
    "heldout.evaluators",
    "heldout.runner",
    "heldout.store",
    "heldout.cli",
    "heldout.evals",
    "heldout.examples",
    "heldout.reports",
    "heldout.analysis",
    "heldout.tracing",
    "heldout.web",
    "heldout.integrations",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.__all__ names missing {symbol!r}"


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_are_all_exported(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and getattr(v, "__module__", name).startswith("heldout")
        and not isinstance(v, type(importlib))
    }
    assert public <= set(module.__all__), f"{name} exports names missing from __all__"


def test_importing_heldout_does_not_load_llama_cpp() -> None:
    import subprocess
    import sys

    code = "import sys, heldout; print('llama_cpp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_importing_heldout_and_its_integrations_does_not_load_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, heldout, heldout.integrations; "
        "print(sorted(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
