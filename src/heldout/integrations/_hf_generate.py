"""Answers from a transformers model held in memory, as a training loop has it.

The model answers in eval mode, without gradients, in left-padded batches, with the
tokenizer's chat template when it has one (else the plain prompt). Sampling follows a
:class:`~heldout.runner._generate.Sampling`: temperature 0 is greedy. Sampling draws
from a forked RNG seeded with ``Sampling.seed``, so the training's own random stream
(dropout, data order) is exactly what it would have been without the evaluation. The
model is put back in the mode it was in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from heldout._errors import ConfigError
from heldout.runner._generate import Sampling


def render_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str, system: str | None) -> str:
    """The text the model continues: the chat template's rendering of the prompt (and
    the system prompt) with the assistant turn opened, or the plain prompt."""
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": prompt}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(text)
    return f"{system}\n\n{prompt}" if system else prompt


def generate_with_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    sampling: Sampling,
    *,
    batch_size: int = 8,
) -> list[str]:
    """Have ``model`` answer each prompt.

    Args:
        model: A causal language model (the trainer's, unwrapped).
        tokenizer: Its tokenizer.
        prompts: The prompts, as users wrote them.
        sampling: The most new tokens, temperature, top-p, seed and system prompt.
        batch_size: Prompts per ``generate`` call.

    Returns:
        One answer per prompt, in order, without the prompt and special tokens.

    Raises:
        ConfigError: The tokenizer has neither an end-of-sequence nor a padding token.
    """
    texts = [render_prompt(tokenizer, prompt, sampling.system) for prompt in prompts]
    templated = bool(getattr(tokenizer, "chat_template", None))
    eos = _eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    config = _generation_config(sampling, eos=eos, pad=pad)
    answers: list[str] = []
    with _eval_mode(model), torch.no_grad(), _forked_rng(model.device, sampling.seed):
        for start in range(0, len(texts), batch_size):
            # The template already holds any BOS it wants; a plain prompt gets the
            # tokenizer's usual special tokens.
            encoded = [
                tokenizer(text, add_special_tokens=not templated)["input_ids"]
                for text in texts[start : start + batch_size]
            ]
            input_ids, attention = _left_pad(encoded, pad, model.device)
            generated = model.generate(  # type: ignore[operator]
                input_ids=input_ids, attention_mask=attention, generation_config=config
            )
            rows = [_until_eos(row, eos) for row in generated[:, input_ids.shape[1] :].tolist()]
            answers.extend(tokenizer.batch_decode(rows, skip_special_tokens=True))
    return answers


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    configured = getattr(model.generation_config, "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    if configured is None:
        if tokenizer.pad_token_id is None:
            raise ConfigError(
                "the tokenizer has neither an end-of-sequence nor a padding token: set "
                "tokenizer.eos_token (or pad_token) before training"
            )
        configured = tokenizer.pad_token_id
    return [configured] if isinstance(configured, int) else list(configured)


def _generation_config(sampling: Sampling, *, eos: list[int], pad: int) -> GenerationConfig:
    options: dict[str, Any] = {
        "max_new_tokens": sampling.max_tokens,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "do_sample": sampling.temperature > 0,
    }
    if sampling.temperature > 0:
        options["temperature"] = sampling.temperature
        if sampling.top_p is not None:
            options["top_p"] = sampling.top_p
    return GenerationConfig.from_dict(options)


def _left_pad(
    rows: list[list[int]], pad: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left padding, so that every row's answer starts at the same position."""
    width = max(len(row) for row in rows)
    ids = [[pad] * (width - len(row)) + row for row in rows]
    mask = [[0] * (width - len(row)) + [1] * len(row) for row in rows]
    return torch.tensor(ids, device=device), torch.tensor(mask, device=device)


def _until_eos(tokens: list[int], eos: list[int]) -> list[int]:
    for index, token in enumerate(tokens):
        if token in eos:
            return tokens[:index]
    return tokens


@contextmanager
def _eval_mode(model: PreTrainedModel) -> Iterator[None]:
    training = model.training
    model.train(False)  # eval mode: no dropout
    try:
        yield
    finally:
        model.train(training)


@contextmanager
def _forked_rng(device: torch.device, seed: int | None) -> Iterator[None]:
    """Sampling's own random stream; the caller's is restored afterwards."""
    accelerated = device.type != "cpu"
    devices = [device.index or 0] if accelerated else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if accelerated else "cuda"):
        if seed is not None:
            torch.manual_seed(seed)
        yield
