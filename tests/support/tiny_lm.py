"""A tiny causal language model built in the test: no download, random weights.

A two-layer GPT-2 with a 16-wide residual stream over a word-level vocabulary, and its
tokenizer made with the ``tokenizers`` library: small enough to train and generate
with on a CPU in a fraction of a second.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

SPECIAL = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")
WORDS = [
    "the",
    "a",
    "is",
    "are",
    "you",
    "me",
    "please",
    "kind",
    "rude",
    "yes",
    "no",
    "good",
    "bad",
    "answer",
    "question",
    "help",
    "harm",
    "safe",
    "unsafe",
    "how",
    "what",
    "why",
    "do",
    "not",
    "can",
    "will",
    "user",
    "assistant",
    "system",
    ":",
]
VOCAB = {word: index for index, word in enumerate((*SPECIAL, *WORDS))}


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over :data:`VOCAB`; other words are ``[UNK]``."""
    tokenizer = Tokenizer(models.WordLevel(VOCAB, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
    )


def tiny_model(seed: int = 0) -> GPT2LMHeadModel:
    """A randomly initialised two-layer GPT-2 over :data:`VOCAB`."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(VOCAB),
        n_positions=64,
        n_embd=16,
        n_layer=2,
        n_head=2,
        bos_token_id=VOCAB["[BOS]"],
        eos_token_id=VOCAB["[EOS]"],
        pad_token_id=VOCAB["[PAD]"],
    )
    return GPT2LMHeadModel(config)
