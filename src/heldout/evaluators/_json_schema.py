"""Checking tool arguments against a JSON Schema, deterministically.

heldout does not depend on ``jsonschema`` yet, so this module checks the subset of JSON
Schema (draft 2020-12) that tool definitions use: ``type``, ``enum``, ``const``,
``properties``, ``required``, ``additionalProperties``, ``items``, ``minItems``,
``maxItems``, ``uniqueItems``, ``minLength``, ``maxLength``, ``pattern``, ``minimum``,
``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``, ``multipleOf``, ``allOf``,
``anyOf``, ``oneOf``, ``not`` and local ``$ref`` (``#/$defs/...``). Annotations
(``description``, ``title``, ``default``, ``examples``, ``format``, ...) assert nothing,
as in the standard. Any other keyword is not checked and is reported in
:attr:`SchemaCheck.unchecked`, never ignored silently.

Moving to ``jsonschema`` is the body of :func:`check_arguments`::

    validator = jsonschema.Draft202012Validator(schema)
    return SchemaCheck(tuple(f"{e.json_path}: {e.message}" for e in validator.iter_errors(value)))
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "definitions",
        "title",
        "description",
        "default",
        "examples",
        "format",
        "deprecated",
        "readOnly",
        "writeOnly",
        "contentMediaType",
        "contentEncoding",
    }
)
"""Keywords that describe and assert nothing (``format`` is an annotation by default)."""

KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "$ref",
    }
)
"""The keywords checked; each is the method named after it (``_minItems``)."""

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "object": (dict,),
    "array": (list,),
    "boolean": (bool,),
    "null": (type(None),),
}


_BOUNDS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "minimum": (operator.ge, "at least"),
    "maximum": (operator.le, "at most"),
    "exclusiveMinimum": (operator.gt, "greater than"),
    "exclusiveMaximum": (operator.lt, "less than"),
}


class SchemaError(ValueError):
    """The schema itself is not valid JSON Schema (a fault of the data, not the agent)."""


@dataclass(frozen=True)
class SchemaCheck:
    """What checking one value against a schema found.

    Attributes:
        violations: Each way the value breaks the schema, as ``$.path: what``.
        unchecked: Schema keywords this checker does not know, so did not check.
    """

    violations: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """No violation found."""
        return not self.violations


def check_arguments(value: Any, schema: dict[str, Any]) -> SchemaCheck:
    """Check ``value`` against ``schema``.

    Raises:
        SchemaError: The schema is malformed (an unknown type name, a ``$ref`` that
            leads nowhere, a keyword with a value of the wrong kind).
    """
    checker = _Checker(schema)
    checker.check(value, schema, "$")
    return SchemaCheck(tuple(checker.violations), tuple(sorted(checker.unchecked)))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "integer" if _is_integer(value) else "number"
    for name, types in _TYPES.items():
        if isinstance(value, types):
            return name
    return type(value).__name__


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return _is_integer(value)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name not in _TYPES:
        raise SchemaError(f"unknown type {name!r}")
    return isinstance(value, _TYPES[name]) and not (name != "boolean" and isinstance(value, bool))


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


class _Checker:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.violations: list[str] = []
        self.unchecked: set[str] = set()

    def check(self, value: Any, schema: Any, path: str) -> None:
        if schema is True or schema == {}:
            return
        if schema is False:
            self.violations.append(f"{path}: no value is allowed here")
            return
        if not isinstance(schema, dict):
            raise SchemaError(f"a schema must be an object or a boolean, got {schema!r}")
        for key, rule in schema.items():
            if key in KEYWORDS:
                getattr(self, "_" + key.lstrip("$"))(value, rule, path, schema)
            elif key not in ANNOTATIONS:
                self.unchecked.add(key)

    def valid(self, value: Any, schema: Any) -> bool:
        """Whether ``value`` meets ``schema``, without recording anything."""
        probe = _Checker(self.root)
        probe.check(value, schema, "$")
        self.unchecked |= probe.unchecked
        return not probe.violations

    def fail(self, path: str, message: str) -> None:
        self.violations.append(f"{path}: {message}")

    # -- keywords: each is called with (value, the keyword's rule, path, schema) --------

    def _type(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        names = [rule] if isinstance(rule, str) else rule
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SchemaError(f"type must be a name or a list of names, got {rule!r}")
        if not any(_is_type(value, name) for name in names):
            self.fail(path, f"expected {' or '.join(names)}, got {_kind(value)}")

    def _enum(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        if not isinstance(rule, list):
            raise SchemaError(f"enum must be a list, got {rule!r}")
        if not any(_equal(value, option) for option in rule):
            self.fail(path, f"{value!r} is not one of {rule!r}")

    def _const(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        if not _equal(value, rule):
            self.fail(path, f"expected {rule!r}, got {value!r}")

    def _properties(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        if not isinstance(value, dict):
            return
        for key, sub in rule.items():
            if key in value:
                self.check(value[key], sub, f"{path}.{key}")

    def _required(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        if isinstance(value, dict):
            for key in rule:
                if key not in value:
                    self.fail(path, f"missing required property {key!r}")

    def _additionalProperties(
        self, value: Any, rule: Any, path: str, schema: dict[str, Any]
    ) -> None:
        if not isinstance(value, dict):
            return
        known = schema.get("properties", {})
        for key in value:
            if key in known:
                continue
            if rule is False:
                self.fail(path, f"property {key!r} is not allowed")
            else:
                self.check(value[key], rule, f"{path}.{key}")

    def _items(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                self.check(item, rule, f"{path}[{index}]")

    def _minItems(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        if isinstance(value, list) and len(value) < rule:
            self.fail(path, f"expected at least {rule} item(s), got {len(value)}")

    def _maxItems(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        if isinstance(value, list) and len(value) > rule:
            self.fail(path, f"expected at most {rule} item(s), got {len(value)}")

    def _uniqueItems(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        if rule is True and isinstance(value, list):
            for i, item in enumerate(value):
                if any(_equal(item, other) for other in value[:i]):
                    self.fail(path, f"item {i} repeats an earlier item")
                    return

    def _minLength(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        if isinstance(value, str) and len(value) < rule:
            self.fail(path, f"expected at least {rule} character(s), got {len(value)}")

    def _maxLength(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        if isinstance(value, str) and len(value) > rule:
            self.fail(path, f"expected at most {rule} character(s), got {len(value)}")

    def _pattern(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        if not isinstance(value, str):
            return
        try:
            found = re.search(rule, value)
        except re.error as exc:
            raise SchemaError(f"pattern {rule!r} is not a valid regular expression") from exc
        if found is None:
            self.fail(path, f"{value!r} does not match the pattern {rule!r}")

    def _bound(self, value: Any, rule: Any, path: str, kind: str) -> None:
        if not isinstance(rule, int | float) or isinstance(rule, bool):
            raise SchemaError(f"{kind} must be a number, got {rule!r}")
        if rule == 0 and kind == "multipleOf":
            raise SchemaError("multipleOf must be greater than 0")
        if not _is_type(value, "number"):
            return
        if kind == "multipleOf":
            quotient = value / rule
            ok = math.isclose(quotient, round(quotient), rel_tol=0, abs_tol=1e-9)
        else:
            ok = _BOUNDS[kind][0](value, rule)
        if not ok:
            word = "a multiple of" if kind == "multipleOf" else _BOUNDS[kind][1]
            self.fail(path, f"{value!r} is not {word} {rule!r}")

    def _minimum(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        self._bound(value, rule, path, "minimum")

    def _maximum(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        self._bound(value, rule, path, "maximum")

    def _exclusiveMinimum(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        self._bound(value, rule, path, "exclusiveMinimum")

    def _exclusiveMaximum(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        self._bound(value, rule, path, "exclusiveMaximum")

    def _multipleOf(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        self._bound(value, rule, path, "multipleOf")

    def _allOf(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        for sub in rule:
            self.check(value, sub, path)

    def _anyOf(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        if not any(self.valid(value, sub) for sub in rule):
            self.fail(path, "matches none of the allowed schemas (anyOf)")

    def _oneOf(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        matches = sum(self.valid(value, sub) for sub in rule)
        if matches != 1:
            self.fail(path, f"matches {matches} of the oneOf schemas, expected exactly 1")

    def _not(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        if self.valid(value, rule):
            self.fail(path, "matches a schema it must not match (not)")

    def _ref(self, value: Any, rule: Any, path: str, _: dict[str, Any]) -> None:
        if not isinstance(rule, str) or not rule.startswith("#"):
            raise SchemaError(f"only local $ref ('#/...') is supported, got {rule!r}")
        target: Any = self.root
        for part in filter(None, rule[1:].split("/")):
            key = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or key not in target:
                raise SchemaError(f"$ref {rule!r} leads nowhere")
            target = target[key]
        self.check(value, target, path)
