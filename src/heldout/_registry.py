"""A small typed registry: names and aliases to classes, imported lazily."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from heldout._errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to subclasses of ``base``.

    Entries are ``"module:object"`` strings imported on first use, so registering a
    provider with heavy dependencies (llama.cpp) costs nothing until it is asked for.

    Args:
        kind: What the registry holds, for error messages (``"judge provider"``).
        base: The class every entry must subclass.
    """

    # ``base`` is typed loosely: registries hold abstract bases, which type[T] refuses.
    def __init__(self, kind: str, base: type[Any]) -> None:
        self._kind = kind
        self._base = base
        self._entries: dict[str, str | type[T]] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, target: str | type[T], *, aliases: tuple[str, ...] = ()) -> None:
        """Add an entry under ``name`` (and its aliases)."""
        if name in self._entries or name in self._aliases:
            raise ConfigError(f"{self._kind} {name!r} is registered twice")
        self._entries[name] = target
        for alias in aliases:
            self._aliases[alias] = name

    def names(self) -> list[str]:
        """The registered names, sorted (aliases left out)."""
        return sorted(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def get(self, name: str) -> type[T]:
        """The class registered under ``name`` or one of its aliases.

        Raises:
            ConfigError: Unknown name (the message lists what is available), or an
                entry that does not subclass the registry's base.
        """
        canonical = self._aliases.get(name, name)
        if canonical not in self._entries:
            available = ", ".join(self.names())
            raise ConfigError(f"Unknown {self._kind} {name!r}. Available: {available}")
        target = self._entries[canonical]
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            obj = getattr(importlib.import_module(module_name), attr)
            if not (isinstance(obj, type) and issubclass(obj, self._base)):
                raise ConfigError(
                    f"{self._kind} {canonical!r} points at {target}, "
                    f"which is not a {self._base.__name__}"
                )
            self._entries[canonical] = obj
            target = obj
        return target
