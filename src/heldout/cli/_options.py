"""Options shared by several commands: config file, backend, and the judges compared."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from heldout._errors import ConfigError
from heldout.config import Settings, load_settings
from heldout.data import JudgeVerdict
from heldout.store import Store

ConfigOpt = Annotated[
    str | None, typer.Option("--config", help="Config file (default ./heldout.toml).")
]
BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="local (this process) or ray (shards as Ray tasks; needs the ray extra and a "
        "PostgreSQL store). Default: HELDOUT_BACKEND, else local.",
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="The Ray cluster: auto, or ray://host:10001. Default: HELDOUT_RAY_ADDRESS, "
        "else a Ray started here.",
    ),
]

RunsOpt = Annotated[
    list[str], typer.Option("--run", help="A run of one judge; repeat for each judge.")
]
VerdictsOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--verdicts",
        help="Imported verdicts of one more judge (e.g. the training judge's JSONL, CSV or "
        "Parquet), named after the file; repeatable.",
    ),
]
EvaluatorOpt = Annotated[
    str | None,
    typer.Option(help="Only this evaluator's verdicts (default: every evaluator, each an axis)."),
]


def run_settings(config: str | None, backend: str | None, ray_address: str | None) -> Settings:
    """The settings of ``config`` and the environment, with the command line's backend.

    Raises:
        ConfigError: The backend is neither ``local`` nor ``ray``, or the config is invalid.
    """
    settings = load_settings(config)
    if backend is not None and backend not in ("local", "ray"):
        raise ConfigError(f"--backend must be local or ray, not {backend!r}")
    if backend is None and ray_address is None:
        return settings
    ray = settings.ray.model_copy(update={"address": ray_address or settings.ray.address})
    chosen = backend or ("ray" if ray_address else settings.backend)
    return settings.model_copy(update={"backend": chosen, "ray": ray})


def judged_verdicts(
    config: str | None, runs: list[str], files: list[Path] | None, evaluator: str | None
) -> dict[str, list[JudgeVerdict]]:
    """Each judge's verdicts, by judge: the stored runs' and the imported files'.

    Raises:
        ConfigError: A run is unknown, or two judges share a name.
        DataError: A verdicts file cannot be read.
    """
    from heldout.analysis import verdicts_from_sources

    store = Store.open(load_settings(config).db_url)
    try:
        return verdicts_from_sources(store, runs, files=files or [], evaluator=evaluator)
    finally:
        store.close()
