"""The judge spec grammar."""

from __future__ import annotations

import pytest

from heldout._errors import ConfigError
from heldout.judges import JudgeSpec

HF = "hf:Qwen/Qwen2.5-1.5B-Instruct-GGUF/qwen2.5-1.5b-instruct-q4_k_m.gguf"


@pytest.mark.parametrize(
    ("text", "provider", "model", "base_url"),
    [
        ("openai:gpt-4o-mini", "openai", "gpt-4o-mini", None),
        (
            "openai:qwen2.5-7b@http://localhost:8000/v1",
            "openai",
            "qwen2.5-7b",
            "http://localhost:8000/v1",
        ),
        ("ollama:llama3.1:8b", "ollama", "llama3.1:8b", None),
        (
            "ollama:llama3.1:8b@https://gpu:11434/v1",
            "ollama",
            "llama3.1:8b",
            "https://gpu:11434/v1",
        ),
        ("openai:team@org/model@http://h/v1", "openai", "team@org/model", "http://h/v1"),
        ("local:qwen2.5-1.5b", "local", "qwen2.5-1.5b", None),
        ("local:/models/judge.gguf", "local", "/models/judge.gguf", None),
        (f"local:{HF}", "local", HF, None),
        ("  openai:gpt-4o  ", "openai", "gpt-4o", None),
    ],
)
def test_parse(text: str, provider: str, model: str, base_url: str | None) -> None:
    spec = JudgeSpec.parse(text)
    assert spec == JudgeSpec(provider, model, base_url)
    assert JudgeSpec.parse(str(spec)) == spec


def test_str_round_trips() -> None:
    text = "openai:qwen2.5-7b@http://localhost:8000/v1"
    assert str(JudgeSpec.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("gpt-4o-mini", "provider:model"),
        ("openai:", "provider:model"),
        (":gpt-4o", "provider:model"),
        ("OpenAI:gpt-4o", "not a valid name"),
        ("openai:m@http://a/v1@http://b/v1", "more than one"),
        ("local:judge@http://h/v1", "no base URL"),
        ("openai:@http://h/v1", "names no model"),
    ],
)
def test_malformed_specs_are_config_errors(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        JudgeSpec.parse(text)


def test_spec_is_frozen() -> None:
    spec = JudgeSpec.parse("openai:gpt-4o")
    with pytest.raises(AttributeError):
        spec.model = "other"  # type: ignore[misc]
