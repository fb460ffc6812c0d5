"""Answers from an in-memory transformers model: a tiny GPT-2 built here, on the CPU."""

from __future__ import annotations

import pytest
import torch

from heldout import ConfigError
from heldout.integrations._hf_generate import generate_with_model, render_prompt
from heldout.runner._generate import Sampling
from tests.support.tiny_lm import tiny_model, tiny_tokenizer

PROMPTS = ["please help me", "what is a good answer you can do", "harm", "why not"]
TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}assistant :{% endif %}"
)


def test_greedy_answers_do_not_depend_on_batching_and_restore_the_mode() -> None:
    model, tokenizer = tiny_model(), tiny_tokenizer()
    model.train()
    greedy = Sampling(max_tokens=5)

    one = generate_with_model(model, tokenizer, PROMPTS, greedy, batch_size=1)
    # Left padding keeps every answer where it would be alone.
    assert generate_with_model(model, tokenizer, PROMPTS, greedy, batch_size=4) == one
    assert len(one) == len(PROMPTS)
    assert all(isinstance(a, str) and "[PAD]" not in a and "[EOS]" not in a for a in one)
    assert all(len(a.split()) <= 5 for a in one)
    assert model.training  # put back in train mode
    model.eval()
    generate_with_model(model, tokenizer, PROMPTS[:1], greedy)
    assert not model.training


def test_sampling_is_seeded_and_leaves_the_training_random_stream_alone() -> None:
    model, tokenizer = tiny_model(), tiny_tokenizer()
    hot = Sampling(max_tokens=6, temperature=1.5, top_p=0.95, seed=7)
    torch.manual_seed(123)
    before = torch.get_rng_state()

    first = generate_with_model(model, tokenizer, PROMPTS, hot, batch_size=2)

    assert torch.equal(torch.get_rng_state(), before)
    assert generate_with_model(model, tokenizer, PROMPTS, hot, batch_size=2) == first
    other = generate_with_model(model, tokenizer, PROMPTS, hot.model_copy(update={"seed": 8}))
    assert other != first
    greedy = generate_with_model(model, tokenizer, PROMPTS, Sampling(max_tokens=6))
    assert first != greedy


def test_the_chat_template_frames_the_prompt_when_the_tokenizer_has_one() -> None:
    tokenizer = tiny_tokenizer()
    assert render_prompt(tokenizer, "please help me", None) == "please help me"
    assert render_prompt(tokenizer, "help", "be kind") == "be kind\n\nhelp"

    tokenizer.chat_template = TEMPLATE
    assert render_prompt(tokenizer, "help", "be kind") == (
        "system : be kind user : help assistant :"
    )
    # The templated text is what the model continues.
    model = tiny_model()
    framed = generate_with_model(model, tokenizer, ["help"], Sampling(max_tokens=4))
    plain = tiny_tokenizer()
    assert framed == generate_with_model(
        model, plain, ["user : help assistant :"], Sampling(max_tokens=4)
    )


def test_a_tokenizer_without_end_or_padding_tokens_is_a_config_error() -> None:
    model, tokenizer = tiny_model(), tiny_tokenizer()
    model.generation_config.eos_token_id = None
    tokenizer.eos_token = None
    tokenizer.pad_token = None
    with pytest.raises(ConfigError, match="neither an end-of-sequence nor a padding token"):
        generate_with_model(model, tokenizer, PROMPTS, Sampling(max_tokens=2))
