"""Candidates to label: a prompt and two or more responses to it.

Candidates come from a file (JSON lines, CSV or Parquet rows of ``id``, ``prompt`` and
``responses``) or are sampled from a policy endpoint, ``k`` per prompt, with the
sampling parameters given (temperature, top-p, a seed per candidate). Sampled
candidates are generated through the judge client and cached like every other call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import combinations
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from heldout._errors import DataError
from heldout.config import Settings
from heldout.data._loaders import StrPath, check_file, reader_for
from heldout.data._sample import Sample
from heldout.judges._cache import ResponseCache
from heldout.judges._client import JudgeClient
from heldout.judges._factory import make_judge
from heldout.runner._generate import Sampling, generate_outputs


class Candidates(BaseModel):
    """One prompt and the responses to compare."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    """The prompt's id, unique in the file."""
    prompt: str = Field(min_length=1)
    """The prompt every response answers."""
    responses: list[str] = Field(min_length=2)
    """Two or more candidate responses."""
    cohort: str = "default"
    """The cohort of the prompt."""
    generators: list[str | None] | None = None
    """The model that wrote each response, when known (one per response)."""

    @field_validator("responses", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        # A CSV cell holds the list as JSON text.
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValueError("responses must be a list (or its JSON text)") from exc
        return value

    def pair_samples(self) -> list[Sample]:
        """One sample per pair of responses (every pair, i < j), ready for the runner.

        The sample's ``output`` is response ``i`` (A) and ``metadata["output_b"]`` is
        response ``j`` (B); its id is ``"{id}:{i}-{j}"``.
        """
        return [
            Sample(
                id=f"{self.id}:{i}-{j}",
                cohort=self.cohort,
                input=self.prompt,
                output=self.responses[i],
                metadata={"prompt_id": self.id, "a": i, "b": j, "output_b": self.responses[j]},
            )
            for i, j in combinations(range(len(self.responses)), 2)
        ]


def read_candidates(path: StrPath) -> list[Candidates]:
    """Read candidates from a JSON lines, CSV or Parquet file.

    Raises:
        DataError: The file cannot be read, a row is not a prompt with two or more
            responses, or an id repeats; the message names the file, line and field.
    """
    file, label = check_file(path)
    rows: list[Candidates] = []
    seen: dict[str, int] = {}
    for line, raw in reader_for(file, label)(file, label):
        try:
            row = Candidates.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or None
            message = first["msg"].removeprefix("Value error, ")
            raise DataError(
                f"{message}; each row needs id, prompt and a list of two or more responses",
                path=label,
                line=line,
                field=field,
            ) from exc
        if row.id in seen:
            raise DataError(
                f"id {row.id!r} repeats (first on line {seen[row.id]})",
                path=label,
                line=line,
                field="id",
            )
        seen[row.id] = line
        rows.append(row)
    if not rows:
        raise DataError("no candidates: the file has no rows", path=label)
    return rows


async def sample_candidates(
    prompts: Sequence[Sample],
    policy: str,
    *,
    k: int = 2,
    sampling: Sampling,
    settings: Settings,
    cache: ResponseCache | None = None,
    workers: int = 16,
) -> tuple[list[Candidates], dict[str, str]]:
    """Sample ``k`` responses per prompt from a policy endpoint.

    Candidate ``i`` is sampled with seed ``sampling.seed + i`` (or no seed when
    ``sampling.seed`` is None), so the candidates differ and reproduce.

    Returns:
        The prompts with at least two responses, and for every other prompt why it has
        fewer (its failed generations): nothing is dropped silently.
    """
    if k < 2:
        raise DataError(f"k must be at least 2 to have a pair to compare; got {k}")
    client = JudgeClient(make_judge(policy, settings), settings=settings, cache=cache)
    policies = {
        f"candidate-{i}": (
            client,
            sampling.model_copy(
                update={"seed": None if sampling.seed is None else sampling.seed + i}
            ),
        )
        for i in range(k)
    }
    try:
        generated = await generate_outputs(prompts, policies, workers=workers)
    finally:
        await client.aclose()
    answers = {name: {s.id: s.output or "" for s in g.samples} for name, g in generated.items()}
    rows: list[Candidates] = []
    missing: dict[str, str] = {}
    for prompt in prompts:
        responses = [answers[name][prompt.id] for name in policies if prompt.id in answers[name]]
        if len(responses) < 2:
            errors = [
                str(g.failures[prompt.id]) for g in generated.values() if prompt.id in g.failures
            ]
            missing[prompt.id] = f"{len(responses)} of {k} candidates: " + "; ".join(errors)
            continue
        rows.append(
            Candidates(
                id=prompt.id,
                prompt=prompt.input,
                responses=responses,
                cohort=prompt.cohort,
                generators=[policy] * len(responses),
            )
        )
    return rows, missing
