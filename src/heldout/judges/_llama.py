"""llama.cpp helpers of the local judge: the tokens that start each choice, the JSON
grammar, and importing llama-cpp-python with a clear error when it is missing."""

from __future__ import annotations

import importlib
import json
from typing import Any

from heldout._errors import ConfigError, JudgeRefused
from heldout.judges._model_files import INSTALL_HINT
from heldout.judges._types import JudgeRequest


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` module, imported only when a local judge is used."""
    try:
        return importlib.import_module("llama_cpp")
    except ImportError as exc:
        raise ConfigError(
            "The local judge needs llama-cpp-python, which is not installed (or failed to "
            f"build): {exc}. Install it with: {INSTALL_HINT}. It compiles llama.cpp, "
            "about 3 minutes on 2 cores."
        ) from exc


def variants(choice: str) -> set[str]:
    """Spellings a model may start a choice with: case variants, with and without a space."""
    text = choice.strip()
    cases = {text, text.lower(), text.upper(), text.capitalize()}
    return cases | {f" {case}" for case in cases}


def token_text(llm: Any, token: int) -> str:
    """A token's text, special tokens included (empty for a model without that token)."""
    if token < 0:
        return ""
    text: bytes = llm.detokenize([token], special=True)
    return text.decode("utf-8", errors="replace")


def first_token(llm: Any, text: str) -> int | None:
    """The first token of ``text``, or None for an empty text."""
    tokens: list[int] = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    return tokens[0] if tokens else None


def choice_tokens(
    llm: Any, choices: tuple[str, ...], memo: dict[tuple[str, ...], list[list[int]]]
) -> list[list[int]]:
    """For each choice, the first tokens that start it (one per spelling variant).

    ``memo`` keeps the answer per choice tuple: a model's tokens never change.
    """
    if choices in memo:
        return memo[choices]
    if len(choices) < 2:
        raise ConfigError(f"A choice request needs at least two choices, got {choices!r}")
    owners: dict[int, set[int]] = {}
    primary: list[int] = []
    for index, choice in enumerate(choices):
        first = first_token(llm, choice)
        if first is None:
            raise ConfigError(f"Choice {choice!r} is empty")
        primary.append(first)
        for variant in variants(choice):
            token = first_token(llm, variant)
            if token is not None:
                owners.setdefault(token, set()).add(index)
    for token in primary:
        if len(owners[token]) > 1:
            clash = [choices[i] for i in sorted(owners[token])]
            raise ConfigError(
                f"Choices {clash!r} start with the same token "
                f"{llm.detokenize([token])!r} for this model; use choices that differ "
                "in their first word or letter (e.g. 'A'/'B', 'Yes'/'No')"
            )
    # A variant shared by two choices (rare) says nothing about either: drop it.
    table = [sorted(t for t, owner in owners.items() if owner == {i}) for i in range(len(choices))]
    memo[choices] = table
    return table


def json_grammar(llm: Any, request: JudgeRequest, endpoint: str) -> Any:
    """The grammar that holds generation to ``request.json_schema`` (any object if None)."""
    grammars = importlib.import_module("llama_cpp.llama_grammar")
    try:
        gbnf: str = (
            grammars.JSON_GBNF
            if request.json_schema is None
            else grammars.json_schema_to_gbnf(json.dumps(request.json_schema))
        )
    except Exception as exc:  # the converter raises bare Exception on unsupported schemas
        raise JudgeRefused(
            f"the json_schema cannot be turned into a llama.cpp grammar: {exc}",
            endpoint=endpoint,
        ) from exc
    # llama.cpp returns NULL for a grammar it cannot parse, and the sampler chain
    # would crash on it: try it once here.
    llama_cpp = import_llama_cpp()
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    probe = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root")
    if not probe:
        raise JudgeRefused(
            "llama.cpp rejected the grammar built from the json_schema; simplify the schema",
            endpoint=endpoint,
        )
    llama_cpp.llama_sampler_free(probe)
    return grammars.LlamaGrammar.from_string(gbnf, verbose=False)
