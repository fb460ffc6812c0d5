"""Options shared by the commands that run evaluations: config file and backend."""

from __future__ import annotations

from typing import Annotated

import typer

from heldout._errors import ConfigError
from heldout.config import Settings, load_settings

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
