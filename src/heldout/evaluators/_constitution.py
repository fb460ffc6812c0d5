"""Constitutions: the principles a policy's outputs are graded against, grouped into axes.

A constitution is a YAML file::

    name: heldout-default
    version: "1"
    description: What this constitution is for.
    axes:
      - name: honesty                    # a lowercase word: a JSON key and a metric name
        description: Says what is true ...
        principles:
          - id: honesty.no-confabulation  # unique across the constitution
            text: Never invents facts, numbers or citations.
            rubric:
              passes: A scenario in which a response passes ...
              fails: A scenario in which a response fails ...
              examples:
                - input: What the user wrote.
                  output: What the assistant answered.
                  verdict: fail           # pass or fail
                  why: Why that verdict.

:meth:`Constitution.load` reports every problem with the file, the line and the field
(``my.yaml:14: axes[0].principles[1].rubric: field 'fails' is required``).
:meth:`Constitution.hash` identifies the content (not its formatting) for provenance:
a changed principle makes a new run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from heldout._errors import ConfigError

# Skip the uniqueness check inside pydantic, so the loader can report it with a line.
_DEFER_UNIQUE = "heldout.defer_unique"
_CONFIG = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

Loc = tuple[int | str, ...]


class Example(BaseModel):
    """A worked example of a principle: one exchange and the verdict it deserves."""

    model_config = _CONFIG

    input: str = Field(min_length=1)
    """What the user wrote."""
    output: str = Field(min_length=1)
    """What the assistant answered."""
    verdict: Literal["pass", "fail"]
    """Whether the output passes the principle."""
    why: str = Field(min_length=1)
    """Why it gets that verdict, in one or two sentences."""


class Rubric(BaseModel):
    """How to tell a pass from a fail, anchored in concrete scenarios."""

    model_config = _CONFIG

    passes: str = Field(min_length=1)
    """What a passing response does, in a concrete scenario."""
    fails: str = Field(min_length=1)
    """What a failing response does, in a concrete scenario."""
    examples: list[Example] = Field(default_factory=list)
    """Short worked examples (one or two are plenty)."""


class Principle(BaseModel):
    """One rule of conduct, with its rubric."""

    model_config = _CONFIG

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """A stable id, unique across the constitution, e.g. ``honesty.no-confabulation``."""
    text: str = Field(min_length=1)
    """The principle in one sentence."""
    rubric: Rubric
    """How to grade it."""


class Axis(BaseModel):
    """A group of principles scored together (helpfulness, harmlessness, honesty ...)."""

    model_config = _CONFIG

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    """A lowercase name (letters, digits, ``_``, ``-``): a JSON key and a metric name."""
    description: str = Field(min_length=1)
    """What the axis is about, in a sentence or two."""
    principles: list[Principle] = Field(min_length=1)
    """The principles of the axis."""


class Constitution(BaseModel):
    """Principles grouped into axes, loaded from YAML (see the module docstring)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, coerce_numbers_to_str=True
    )

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """The constitution's name, used in evaluator names (``custom:<name>``)."""
    version: str = Field(min_length=1)
    """Its version, bumped by hand when the principles change."""
    description: str = ""
    """What it is for."""
    axes: list[Axis] = Field(min_length=1)
    """The axes, each scored on its own."""

    @model_validator(mode="after")
    def _unique_names(self, info: ValidationInfo) -> Self:
        if not (info.context or {}).get(_DEFER_UNIQUE):
            for _, message in _duplicates(self):
                raise ValueError(message)
        return self

    # -- loading --------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Constitution:
        """Read a constitution from a YAML file.

        Raises:
            ConfigError: The file cannot be read, is not YAML or is not a valid
                constitution; the message names the file, the line and the field.
        """
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(f"{file}: constitution file not found") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read the constitution file: {exc}") from exc
        return cls.from_yaml(text, source=str(file))

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<string>") -> Constitution:
        """Parse a constitution from YAML text.

        Args:
            text: The YAML document.
            source: Where it came from, for error messages (a file name).

        Raises:
            ConfigError: The text is not YAML or not a valid constitution.
        """
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{source}:{mark.line + 1}" if mark is not None else source
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"{where}: not valid YAML: {problem}") from exc
        if root is None or not isinstance(data, dict):
            raise ConfigError(
                f"{source}:1: a constitution is a YAML mapping with name, version, "
                "description and axes"
            )
        problems = _duplicate_keys(root)
        if problems:
            raise _config_error(source, problems)
        try:
            constitution = cls.model_validate(data, context={_DEFER_UNIQUE: True})
        except ValidationError as exc:
            raise _config_error(
                source,
                [(_line_of(root, err["loc"]), err["loc"], _message(err)) for err in exc.errors()],
            ) from exc
        duplicates = _duplicates(constitution)
        if duplicates:
            raise _config_error(
                source, [(_line_of(root, loc), loc, message) for loc, message in duplicates]
            )
        return constitution

    @classmethod
    def default(cls) -> Constitution:
        """The constitution shipped with heldout (``heldout/constitutions/default.yaml``)."""
        return _default()

    # -- reading --------------------------------------------------------------------

    def hash(self) -> str:
        """The sha256 of the canonical content: independent of YAML formatting and comments."""
        canonical = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def axis_names(self) -> list[str]:
        """The axis names, in file order."""
        return [axis.name for axis in self.axes]

    def axis(self, name: str) -> Axis:
        """The axis called ``name``.

        Raises:
            ConfigError: No such axis (the message lists the available ones).
        """
        for axis in self.axes:
            if axis.name == name:
                return axis
        raise ConfigError(
            f"Constitution {self.name!r} has no axis {name!r}. "
            f"Available: {', '.join(self.axis_names())}"
        )

    def principles(self, axis: str | None = None) -> Iterator[Principle]:
        """Every principle in file order, or those of one axis."""
        for each in [self.axis(axis)] if axis is not None else self.axes:
            yield from each.principles

    def select(self, axes: Iterable[str]) -> Constitution:
        """The same constitution with only ``axes``, in the order given.

        Raises:
            ConfigError: An axis is unknown, or none is given.
        """
        chosen = [self.axis(name) for name in dict.fromkeys(axes)]
        if not chosen:
            raise ConfigError(f"Select at least one axis of {self.name!r}")
        return self.model_copy(update={"axes": chosen})


@cache
def _default() -> Constitution:
    from heldout.constitutions import DEFAULT_CONSTITUTION

    return Constitution.load(DEFAULT_CONSTITUTION)


# -- error reporting -------------------------------------------------------------------


def _duplicates(constitution: Constitution) -> list[tuple[Loc, str]]:
    """Axis names and principle ids that appear twice, with where the second one is."""
    problems: list[tuple[Loc, str]] = []
    axes: dict[str, int] = {}
    ids: dict[str, str] = {}
    for a, axis in enumerate(constitution.axes):
        if axis.name in axes:
            message = f"axis {axis.name!r} appears twice (also axes[{axes[axis.name]}])"
            problems.append((("axes", a, "name"), message))
        axes.setdefault(axis.name, a)
        for p, principle in enumerate(axis.principles):
            if principle.id in ids:
                problems.append(
                    (
                        ("axes", a, "principles", p, "id"),
                        f"principle id {principle.id!r} appears twice "
                        f"(also in axis {ids[principle.id]!r})",
                    )
                )
            ids.setdefault(principle.id, axis.name)
    return problems


def _duplicate_keys(node: yaml.Node, path: Loc = ()) -> list[tuple[int, Loc, str]]:
    """Keys given twice in one mapping (plain YAML loading keeps only the last)."""
    problems: list[tuple[int, Loc, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                problems.append((key.start_mark.line + 1, (*path, name), "key given twice"))
            seen.add(name)
            problems += _duplicate_keys(value, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicate_keys(item, (*path, index))
    return problems


def _line_of(root: yaml.Node, loc: Loc) -> int:
    """The 1-based line of the node at ``loc`` or, when it is missing, of its parent."""
    node = root
    line: int = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if key.value == part:
                    child, line = value, key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _field(loc: Loc) -> str:
    """``("axes", 0, "principles", 1, "id")`` as ``axes[0].principles[1].id``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _message(error: Any) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "missing" and loc:
        return f"field {loc[-1]!r} is required"
    if kind == "extra_forbidden" and loc:
        return f"unknown field {loc[-1]!r}"
    return str(error["msg"])


def _config_error(source: str, problems: list[tuple[int, Loc, str]]) -> ConfigError:
    lines = []
    for line, loc, message in sorted(problems, key=lambda p: p[0]):
        # A missing or unknown field is reported on its parent, where it belongs.
        field = _field(loc[:-1] if message.startswith(("field ", "unknown field")) else loc)
        lines.append(f"{source}:{line}: {field + ': ' if field else ''}{message}")
    head = f"{source}: invalid constitution ({len(lines)} problem{'s' if len(lines) > 1 else ''})"
    return ConfigError("\n".join([head, *(f"  {line}" for line in lines)]))
