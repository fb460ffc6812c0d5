"""Preference labels for a trainer: prompt, chosen, rejected, and how sure the labeler was.

The columns are the ones TRL's ``DPOTrainer`` and ``RewardTrainer`` read (``prompt``,
``chosen``, ``rejected``), plus the soft label: ``probability`` that ``chosen`` is
better, and ``margin`` = |probability - 0.5|. A pair whose margin is below the chosen
minimum is low-confidence: filtered out of the export by default, or kept and flagged.
Every label carries its provenance, so the evaluation side can tell which judge
produced the training preferences.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from heldout._errors import ConfigError, DataError
from heldout.data._loaders import StrPath, check_file, read_jsonl
from heldout.data._sample import Sample
from heldout.store import StoredScore


class PreferenceLabel(BaseModel):
    """One labeled comparison."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str
    """The prompt both responses answer."""
    chosen: str
    """The response the labeler preferred."""
    rejected: str
    """The other response."""
    probability: float
    """The labeler's probability that ``chosen`` is better (0.5 to 1)."""
    margin: float
    """``probability - 0.5``: how far from a coin flip."""
    low_confidence: bool
    """Whether ``margin`` is below the minimum margin of the export."""
    prompt_id: str
    """The prompt's id."""
    pair_id: str
    """The comparison's id: ``"{prompt_id}:{i}-{j}"``."""
    cohort: str
    """The prompt's cohort."""
    principles: list[str]
    """The constitution principles the comparison was judged on."""
    consistent: bool | None
    """Whether both orders picked the same response (position consistency)."""
    labeler: str
    """The labeler's judge spec."""
    template_version: str
    """The labeling prompt's version."""
    constitution: str
    """The constitution's name."""
    constitution_hash: str
    """The constitution's content hash."""


@dataclass
class LabelSet:
    """The labels of a labeling run, and what did not become a label.

    Attributes:
        labels: Every comparison the labeler answered, low-confidence ones flagged.
        errors: Comparisons whose labeling failed, by pair id, with the reason.
        missing: Prompts that had no pair to compare (too few candidates), with why.
        min_margin: The margin below which a label is low-confidence.
        run_id: The labeling run in the store.
    """

    labels: list[PreferenceLabel]
    errors: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    min_margin: float = 0.0
    run_id: str = ""

    @property
    def confident(self) -> list[PreferenceLabel]:
        """The labels at or above the minimum margin."""
        return [label for label in self.labels if not label.low_confidence]

    def records(self, *, keep_low_confidence: bool = False) -> list[dict[str, Any]]:
        """The labels as plain rows for a trainer (low-confidence ones left out unless kept)."""
        chosen = self.labels if keep_low_confidence else self.confident
        return [label.model_dump(mode="json") for label in chosen]

    def to_jsonl(self, path: StrPath, *, keep_low_confidence: bool = False) -> Path:
        """Write the labels as JSON lines; returns the path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as handle:
            for row in self.records(keep_low_confidence=keep_low_confidence):
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return out

    def to_parquet(self, path: StrPath, *, keep_low_confidence: bool = False) -> Path:
        """Write the labels as Parquet; returns the path."""
        import pyarrow as pa  # heavy: only when writing Parquet
        import pyarrow.parquet as pq

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = self.records(keep_low_confidence=keep_low_confidence)
        table = (
            pa.Table.from_pylist(rows) if rows else pa.table({"prompt": pa.array([], pa.string())})
        )
        pq.write_table(table, out)
        return out

    def to_hf_dataset(self, *, keep_low_confidence: bool = False) -> Any:
        """The labels as a ``datasets.Dataset`` (needs the ``datasets`` package).

        Raises:
            ConfigError: ``datasets`` is not installed.
        """
        try:
            import datasets
        except ImportError as exc:
            raise ConfigError(
                "to_hf_dataset needs the datasets package: pip install datasets"
            ) from exc
        return datasets.Dataset.from_list(self.records(keep_low_confidence=keep_low_confidence))


def labels_from_scores(
    scores: Iterable[StoredScore], pairs: Sequence[Sample], *, min_margin: float = 0.0
) -> LabelSet:
    """Turn the labeler's stored scores into labels; error scores are reported, not labels.

    Args:
        scores: The ``preference`` scores of a labeling run.
        pairs: The pair samples the run judged (response B in ``metadata["output_b"]``).
        min_margin: Labels with ``margin`` below this are flagged low-confidence.
    """
    by_id = {pair.id: pair for pair in pairs}
    labels: list[PreferenceLabel] = []
    errors: dict[str, str] = {}
    for score in scores:
        pair = by_id.get(score.sample_id)
        if pair is None:
            continue
        if score.status != "ok" or score.value is None:
            errors[score.sample_id] = score.error or score.reason or score.status
            continue
        labels.append(_label(pair, score, min_margin))
    order = {pair.id: index for index, pair in enumerate(pairs)}
    labels.sort(key=lambda label: order[label.pair_id])
    return LabelSet(labels=labels, errors=errors, min_margin=min_margin)


def _label(pair: Sample, score: StoredScore, min_margin: float) -> PreferenceLabel:
    p_a = float(score.value or 0.0)
    output_a, output_b = pair.output or "", str(pair.metadata["output_b"])
    a_wins = p_a >= 0.5
    probability = p_a if a_wins else 1.0 - p_a
    meta = score.metadata
    preferences = meta.get("preferences") or []
    consistent = all(bool(p.get("consistent")) for p in preferences) if preferences else None
    return PreferenceLabel(
        prompt=pair.input,
        chosen=output_a if a_wins else output_b,
        rejected=output_b if a_wins else output_a,
        probability=probability,
        margin=probability - 0.5,
        low_confidence=probability - 0.5 < min_margin,
        prompt_id=str(pair.metadata.get("prompt_id", pair.id)),
        pair_id=pair.id,
        cohort=pair.cohort,
        principles=[str(p) for p in meta.get("principles", [])],
        consistent=consistent,
        labeler=str(meta.get("labeler", score.judge)),
        template_version=str(meta.get("template_version", score.template_version)),
        constitution=str(meta.get("constitution", "")),
        constitution_hash=str(meta.get("constitution_hash", "")),
    )


def read_labeler(path: StrPath) -> str:
    """The labeler judge spec recorded in a labels file (JSON lines) by heldout.

    Raises:
        DataError: The file has no rows, or its rows disagree on the labeler or have none.
    """
    file, label = check_file(path)
    labelers: set[str] = set()
    for line, row in read_jsonl(file, label):
        value = row.get("labeler")
        if not isinstance(value, str) or not value:
            raise DataError(
                "no labeler recorded: not a heldout labels file",
                path=label,
                line=line,
                field="labeler",
            )
        labelers.add(value)
    if len(labelers) != 1:
        raise DataError(
            f"expected one labeler, found {len(labelers)}: {', '.join(sorted(labelers)) or 'none'}",
            path=label,
        )
    return labelers.pop()
