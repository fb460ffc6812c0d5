"""``heldout label``: constitution-guided preference labels for a trainer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from heldout.cli._options import BackendOpt, ConfigOpt, RayAddressOpt, run_settings
from heldout.runner import RichProgress
from heldout.store import GroupWriter, Store

console = Console()

Format = Literal["jsonl", "parquet"]


def label_command(
    data: Annotated[
        Path,
        typer.Argument(
            help="Candidates (id, prompt, responses), or prompts (id, input) with --policy."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Where to write the labels.")] = Path("labels.jsonl"),
    fmt: Annotated[str, typer.Option("--format", help="jsonl or parquet.")] = "jsonl",
    judge: Annotated[
        str | None, typer.Option(help="The labeler's judge spec (default: the eval judge).")
    ] = None,
    constitution: Annotated[
        Path | None, typer.Option(help="A constitution YAML (default: the shipped one).")
    ] = None,
    principle: Annotated[
        str, typer.Option(help="random (one principle per comparison) or all.")
    ] = "random",
    min_margin: Annotated[
        float, typer.Option(help="Labels with |p - 0.5| below this are low-confidence.")
    ] = 0.1,
    keep_low_confidence: Annotated[
        bool, typer.Option(help="Keep low-confidence labels (flagged) instead of dropping them.")
    ] = False,
    policy: Annotated[
        str | None, typer.Option(help="Sample the candidates from this policy endpoint spec.")
    ] = None,
    k: Annotated[int, typer.Option(min=2, help="Candidates per prompt with --policy.")] = 2,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (--policy).")] = 0.8,
    top_p: Annotated[float | None, typer.Option(help="Nucleus sampling (--policy).")] = None,
    seed: Annotated[int, typer.Option(help="Seeds principles, orders and sampling.")] = 0,
    config: ConfigOpt = None,
    backend: BackendOpt = None,
    ray_address: RayAddressOpt = None,
) -> None:
    """Label pairs of responses with a judge guided by a constitution.

    Both orders are asked and averaged; the labels (prompt, chosen, rejected, probability,
    margin) load in TRL's DPO and reward trainers.
    """
    from heldout._errors import ConfigError
    from heldout.data import Dataset
    from heldout.labeling import (
        ConstitutionalPreference,
        LabelSet,
        label_preferences,
        read_candidates,
        sample_candidates,
    )
    from heldout.runner._generate import Sampling

    if fmt not in ("jsonl", "parquet"):
        raise ConfigError(f"--format must be jsonl or parquet, not {fmt!r}")
    if principle not in ("random", "all"):
        raise ConfigError(f"--principle must be random or all, not {principle!r}")
    settings = run_settings(config, backend, ray_address)
    labeler = ConstitutionalPreference(
        constitution, principle="all" if principle == "all" else "random", seed=seed, judge=judge
    )
    store = Store.open(settings.db_url)
    try:

        async def run() -> LabelSet:
            missing: dict[str, str] = {}
            if policy is None:
                candidates = read_candidates(data)
            else:
                sampling = Sampling(temperature=temperature, top_p=top_p, seed=seed)
                async with GroupWriter(store) as cache:
                    candidates, missing = await sample_candidates(
                        list(Dataset.load(data)), policy, k=k, sampling=sampling,
                        settings=settings, cache=cache,
                    )  # fmt: skip
            with RichProgress(console, "labeling") as progress:
                return await label_preferences(
                    candidates, labeler, store=store, settings=settings,
                    min_margin=min_margin, missing=missing, progress=progress,
                )  # fmt: skip

        labels = asyncio.run(run())
    finally:
        store.close()
    writer = labels.to_parquet if fmt == "parquet" else labels.to_jsonl
    path = writer(out, keep_low_confidence=keep_low_confidence)
    kept = len(labels.labels) if keep_low_confidence else len(labels.confident)
    low = len(labels.labels) - len(labels.confident)
    console.print(
        f"{len(labels.labels)} labels ({low} low-confidence, "
        f"{'kept and flagged' if keep_low_confidence else 'left out'}), "
        f"{len(labels.errors)} errors, {len(labels.missing)} prompts without a pair; "
        f"wrote {kept} to {escape(str(path))}"
    )
    asked_both = [label.consistent for label in labels.labels if label.consistent is not None]
    if asked_both:
        console.print(
            f"position consistency: {sum(asked_both) / len(asked_both):.0%} of "
            f"{len(asked_both)} labels (both orders chose the same response; a low share "
            "means the labeler follows the position, not the content)"
        )
    for pair_id, reason in list(labels.errors.items())[:5]:
        console.print(f"[red]error[/red] {escape(pair_id)}: {escape(reason)}")
