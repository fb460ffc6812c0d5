"""The typed registry, and the judge provider registry built on it."""

from __future__ import annotations

import pytest

from heldout._errors import ConfigError
from heldout._registry import Registry
from heldout.judges import Judge, providers
from heldout.judges._openai import OpenAIJudge


class Base:
    pass


class Child(Base):
    pass


def test_names_are_sorted_without_aliases() -> None:
    registry: Registry[Base] = Registry("thing", Base)
    registry.register("zeta", Child)
    registry.register("alpha", Child, aliases=("a",))
    assert registry.names() == ["alpha", "zeta"]
    assert list(registry) == ["alpha", "zeta"]
    assert "a" in registry
    assert "beta" not in registry


def test_aliases_resolve_to_the_entry() -> None:
    registry: Registry[Base] = Registry("thing", Base)
    registry.register("child", Child, aliases=("kid",))
    assert registry.get("kid") is Child


def test_unknown_name_lists_what_is_available() -> None:
    registry: Registry[Base] = Registry("thing", Base)
    registry.register("beta", Child)
    registry.register("alpha", Child)
    with pytest.raises(ConfigError, match=r"Unknown thing 'gamma'\. Available: alpha, beta"):
        registry.get("gamma")


def test_lazy_entries_are_imported_on_first_use() -> None:
    registry: Registry[Base] = Registry("thing", Base)
    registry.register("child", f"{__name__}:Child")
    assert registry.get("child") is Child


def test_entries_must_subclass_the_base() -> None:
    registry: Registry[Base] = Registry("thing", Base)
    registry.register("wrong", "heldout._errors:ConfigError")
    with pytest.raises(ConfigError, match="not a Base"):
        registry.get("wrong")


def test_a_name_is_registered_once() -> None:
    registry: Registry[Base] = Registry("thing", Base)
    registry.register("child", Child, aliases=("kid",))
    with pytest.raises(ConfigError, match="registered twice"):
        registry.register("child", Child)
    with pytest.raises(ConfigError, match="registered twice"):
        registry.register("kid", Child)


def test_judge_providers() -> None:
    assert providers.names() == ["local", "openai"]
    assert providers.get("openai") is OpenAIJudge
    assert providers.get("ollama") is OpenAIJudge
    assert issubclass(providers.get("openai"), Judge)
    with pytest.raises(
        ConfigError, match=r"Unknown judge provider 'anthropic'\. Available: local, openai"
    ):
        providers.get("anthropic")
