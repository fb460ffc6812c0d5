"""The JSON Schema subset that tool arguments are checked against."""

from __future__ import annotations

import re
from typing import Any

import pytest

from heldout.evaluators._json_schema import SchemaError, check_arguments

EVENT = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 20},
        "start": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$"},
        "minutes": {"type": "integer", "minimum": 5, "maximum": 480, "multipleOf": 5},
        "attendees": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "maxItems": 3,
            "uniqueItems": True,
        },
        "kind": {"enum": ["call", "meeting"]},
        "room": {"type": ["string", "null"]},
        "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    },
    "required": ["title", "start"],
    "additionalProperties": False,
}

VALID = {
    "title": "Q3",
    "start": "2025-06-17T15:00",
    "minutes": 30.0,  # 30.0 is an integer in JSON Schema
    "attendees": ["a", "b"],
    "kind": "call",
    "room": None,
    "score": 0.5,
}


def test_a_valid_value_passes() -> None:
    found = check_arguments(VALID, EVENT)
    assert found.valid
    assert found.unchecked == ()


@pytest.mark.parametrize(
    ("change", "violation"),
    [
        ({"title": ""}, "$.title: expected at least 1 character(s), got 0"),
        ({"title": "x" * 21}, "$.title: expected at most 20 character(s), got 21"),
        ({"start": "tomorrow"}, "$.start: 'tomorrow' does not match the pattern"),
        ({"minutes": "30"}, "$.minutes: expected integer, got string"),
        ({"minutes": True}, "$.minutes: expected integer, got boolean"),
        ({"minutes": 30.5}, "$.minutes: expected integer, got number"),
        ({"minutes": 2}, "$.minutes: 2 is not at least 5"),
        ({"minutes": 485}, "$.minutes: 485 is not at most 480"),
        ({"minutes": 31}, "$.minutes: 31 is not a multiple of 5"),
        ({"attendees": "a, b"}, "$.attendees: expected array, got string"),
        ({"attendees": []}, "$.attendees: expected at least 1 item(s), got 0"),
        ({"attendees": ["a", "b", "c", "d"]}, "$.attendees: expected at most 3 item(s), got 4"),
        ({"attendees": ["a", "a"]}, "$.attendees: item 1 repeats an earlier item"),
        ({"attendees": ["a", 7]}, "$.attendees[1]: expected string, got integer"),
        ({"kind": "party"}, "$.kind: 'party' is not one of ['call', 'meeting']"),
        ({"room": 3}, "$.room: expected string or null, got integer"),
        ({"score": 1}, "$.score: 1 is not less than 1"),
        ({"score": 0}, "$.score: 0 is not greater than 0"),
        ({"colour": "red"}, "$: property 'colour' is not allowed"),
    ],
)
def test_each_broken_rule_is_named_with_its_path(change: dict[str, Any], violation: str) -> None:
    found = check_arguments({**VALID, **change}, EVENT)
    assert any(v.startswith(violation) for v in found.violations), found.violations


def test_missing_required_properties_and_a_wrong_top_level_type() -> None:
    assert check_arguments({"title": "Q3"}, EVENT).violations == (
        "$: missing required property 'start'",
    )
    assert check_arguments(["Q3"], EVENT).violations == ("$: expected object, got array",)


def test_combinators_refs_and_boolean_schemas() -> None:
    schema = {
        "$defs": {"id": {"type": "string", "pattern": "^[A-Z]-[0-9]{3}$"}},
        "type": "object",
        "properties": {
            "sku": {"$ref": "#/$defs/id"},
            "qty": {"anyOf": [{"type": "integer"}, {"const": "all"}]},
            "mode": {"oneOf": [{"type": "string"}, {"enum": ["x", 1]}]},
            "note": {"allOf": [{"type": "string"}, {"maxLength": 3}]},
            "tag": {"not": {"const": "forbidden"}},
            "never": False,
            "anything": True,
        },
        "additionalProperties": {"type": "integer"},
    }
    good = {
        "sku": "A-113",
        "qty": "all",
        "mode": 1,
        "note": "ok",
        "tag": "t",
        "anything": [1],
        "n": 2,
    }
    assert check_arguments(good, schema).valid

    bad = {
        "sku": "A113",
        "qty": 2.5,
        "mode": "x",
        "note": "long",
        "tag": "forbidden",
        "never": 0,
        "n": "2",
    }
    assert sorted(check_arguments(bad, schema).violations) == sorted(
        [
            "$.sku: 'A113' does not match the pattern '^[A-Z]-[0-9]{3}$'",
            "$.qty: matches none of the allowed schemas (anyOf)",
            "$.mode: matches 2 of the oneOf schemas, expected exactly 1",
            "$.note: expected at most 3 character(s), got 4",
            "$.tag: matches a schema it must not match (not)",
            "$.never: no value is allowed here",
            "$.n: expected integer, got string",
        ]
    )


def test_keywords_it_cannot_check_are_reported_not_ignored() -> None:
    schema = {
        "type": "object",
        "description": "annotations assert nothing",
        "properties": {"when": {"type": "string", "format": "date-time"}},
        "patternProperties": {"^x-": {"type": "string"}},
        "dependentRequired": {"a": ["b"]},
    }
    found = check_arguments({"when": "not a date"}, schema)
    assert found.valid  # format is an annotation by default, as in the standard
    assert found.unchecked == ("dependentRequired", "patternProperties")


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "strnig"}, "unknown type 'strnig'"),
        ({"$ref": "#/$defs/missing"}, "leads nowhere"),
        ({"$ref": "other.json#/a"}, "only local $ref"),
        ({"type": "string", "pattern": "(unclosed"}, "not a valid regular expression"),
        ({"properties": {"a": 3}}, "a schema must be an object or a boolean"),
        ({"minimum": "5"}, "minimum must be a number"),
        ({"multipleOf": 0}, "multipleOf must be greater than 0"),
    ],
)
def test_a_malformed_schema_is_a_schema_error(schema: dict[str, Any], message: str) -> None:
    value: Any = {"a": 1} if "properties" in schema else ("x" if "pattern" in schema else 7)
    with pytest.raises(SchemaError, match=re.escape(message)):
        check_arguments(value, schema)
