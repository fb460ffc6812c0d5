"""Judge spec strings: how a user names a judge.

Grammar::

    spec      := provider ":" target
    openai    := "openai:" MODEL [ "@" BASE_URL ]       any OpenAI-compatible endpoint
    ollama    := "ollama:" MODEL [ "@" BASE_URL ]       openai, base URL http://localhost:11434/v1
    local     := "local:" ( ALIAS | PATH.gguf | "hf:" REPO "/" FILE.gguf )

Examples: ``openai:gpt-4o-mini``, ``openai:qwen2.5-7b@http://localhost:8000/v1``,
``ollama:llama3.1:8b``, ``local:qwen2.5-1.5b`` (the embedded default),
``local:/models/judge.gguf``,
``local:hf:Qwen/Qwen2.5-1.5B-Instruct-GGUF/qwen2.5-1.5b-instruct-q4_k_m.gguf``.

The model part of an ``openai`` spec may itself hold colons (``llama3.1:8b``); only the
last ``@`` followed by ``http://`` or ``https://`` starts a base URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from heldout._errors import ConfigError

_URL_SPLIT = re.compile(r"@(?=https?://)")


@dataclass(frozen=True)
class JudgeSpec:
    """A parsed judge spec.

    Attributes:
        provider: The provider name (``openai``, ``ollama``, ``local``).
        model: The model name, alias, file path or hub id.
        base_url: The endpoint for HTTP providers, when given in the spec.
    """

    provider: str
    model: str
    base_url: str | None = None

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}" + (f"@{self.base_url}" if self.base_url else "")

    @classmethod
    def parse(cls, spec: str) -> JudgeSpec:
        """Parse ``spec``.

        Raises:
            ConfigError: The spec does not follow the grammar above.
        """
        text = spec.strip()
        provider, sep, rest = text.partition(":")
        if not sep or not provider or not rest:
            raise ConfigError(
                f"Judge spec {spec!r} is not of the form provider:model, "
                "e.g. 'openai:gpt-4o-mini' or 'local:qwen2.5-1.5b'"
            )
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", provider):
            raise ConfigError(f"Judge spec {spec!r}: provider {provider!r} is not a valid name")
        base_url: str | None = None
        parts = _URL_SPLIT.split(rest)
        if len(parts) > 2:
            raise ConfigError(f"Judge spec {spec!r} has more than one @base_url")
        if len(parts) == 2:
            rest, base_url = parts
            if provider == "local":
                raise ConfigError(f"Judge spec {spec!r}: a local judge takes no base URL")
        if not rest:
            raise ConfigError(f"Judge spec {spec!r} names no model")
        return cls(provider=provider, model=rest, base_url=base_url)
