"""Settings: ``heldout.toml`` in the working directory, then environment variables.

Precedence, highest first: explicit arguments, environment (``HELDOUT_*``,
``OPENAI_API_KEY``, ``OPENAI_BASE_URL``), the config file, defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from heldout._errors import ConfigError

DEFAULT_LOCAL_JUDGE = "local:qwen2.5-1.5b"
CONFIG_FILE = "heldout.toml"


class EndpointSettings(BaseModel):
    """Limits for one judge endpoint, keyed by base URL (``local:<gguf path>`` for local judges)."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int | None = Field(default=None, ge=1)
    """Calls in flight at once; None takes the provider's default (16 for HTTP, 1 local)."""
    timeout_s: float | None = Field(default=None, gt=0)
    """Seconds one attempt may take; None takes ``JudgeDefaults.timeout_s``."""
    max_retries: int | None = Field(default=None, ge=0)
    """Attempts after the first; None takes ``JudgeDefaults.max_retries``."""


class JudgeDefaults(BaseModel):
    """Retry and timeout defaults for every endpoint."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(default=120.0, gt=0)
    """Seconds one attempt may take."""
    max_retries: int = Field(default=5, ge=0)
    """Attempts after the first on 429, 5xx, timeouts and connection errors."""
    backoff_base_s: float = Field(default=0.5, gt=0)
    """First backoff; it doubles each retry, with full jitter."""
    backoff_max_s: float = Field(default=30.0, gt=0)
    """Longest backoff (and longest Retry-After honoured)."""


class Price(BaseModel):
    """A model's price in US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float = Field(ge=0)
    """Dollars per million prompt tokens."""
    output_per_mtok: float = Field(ge=0)
    """Dollars per million completion tokens."""


class LocalSettings(BaseModel):
    """The embedded llama.cpp judge."""

    model_config = ConfigDict(extra="forbid")

    cache_dir: str | None = None
    """Where assembled model files live; default ``~/.cache/heldout/models``."""
    n_ctx: int = Field(default=4096, ge=512)
    """Context window in tokens."""
    n_threads: int | None = Field(default=None, ge=1)
    """CPU threads; None uses every core."""


class ServerSettings(BaseModel):
    """``heldout serve``: the trace receiver and the dashboard."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    """The address to bind (``HELDOUT_HOST``); loopback only unless set otherwise."""
    port: int = Field(default=8765, ge=0, le=65535)
    """The TCP port (``HELDOUT_PORT``); 0 picks a free one."""
    token: str | None = Field(default=None, min_length=16)
    """The token that ingest and labeling require (``HELDOUT_TOKEN``), sent as
    ``Authorization: Bearer <token>``. None: ``heldout serve`` makes a random one and
    prints it; the library refuses those endpoints."""
    dashboard_token: bool = False
    """Require the token for the dashboard pages too (``HELDOUT_DASHBOARD_TOKEN``)."""
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """The largest request body accepted, after decompression; larger ones get 413."""
    cohorts: str | None = None
    """The cohort rules YAML file (``HELDOUT_COHORTS``); None: traces join no cohort."""
    page_size: int = Field(default=50, ge=1, le=1000)
    """Rows per page in the dashboard."""


class RaySettings(BaseModel):
    """The Ray backend: where the cluster is and how a run is cut into shards."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = None
    """The cluster to join (``HELDOUT_RAY_ADDRESS``): ``auto`` for the cluster this
    machine belongs to, ``ray://host:10001`` for Ray Client; None joins a Ray already
    initialised in this process, else starts a single-node Ray here."""
    shard_size: int = Field(default=500, ge=1)
    """Scores per shard: one Ray task judges one shard and commits it as it goes."""
    max_retries: int = Field(default=3, ge=0)
    """Times Ray reruns a shard whose worker or node was lost."""
    task_cpus: float = Field(default=1.0, gt=0)
    """CPUs a shard task reserves; judging waits on endpoints, so below 1 packs more
    shards on a node."""
    max_shards_in_flight: int | None = Field(default=None, ge=1)
    """Shards submitted at once (default: twice the tasks the cluster's CPUs fit)."""


class Settings(BaseModel):
    """Everything heldout can be configured with."""

    model_config = ConfigDict(extra="forbid")

    db_url: str = "sqlite:///.heldout/heldout.db"
    """SQLAlchemy URL of the results store (``HELDOUT_DB_URL``)."""
    eval_judge: str = DEFAULT_LOCAL_JUDGE
    """Spec of the eval judge (``HELDOUT_EVAL_JUDGE``)."""
    training_judge: str | None = None
    """Spec of the judge that labeled the training preferences, when known."""
    openai_api_key: str | None = None
    """Key for ``openai`` judges (``OPENAI_API_KEY``); local servers take any value."""
    openai_base_url: str | None = None
    """Default base URL for ``openai`` judges without ``@url`` (``OPENAI_BASE_URL``)."""
    judge: JudgeDefaults = Field(default_factory=JudgeDefaults)
    """Retry and timeout defaults."""
    endpoints: dict[str, EndpointSettings] = Field(default_factory=dict)
    """Per-endpoint limits, keyed by base URL or local spec."""
    prices: dict[str, Price] = Field(default_factory=dict)
    """Prices by model name, added to the built-in table."""
    local: LocalSettings = Field(default_factory=LocalSettings)
    """The embedded judge."""
    server: ServerSettings = Field(default_factory=ServerSettings)
    """``heldout serve``: bind address, token, limits."""
    backend: Literal["local", "ray"] = "local"
    """Where runs execute (``HELDOUT_BACKEND``): ``local`` (one process, asyncio) or
    ``ray`` (shards as Ray tasks; needs the ``ray`` extra and a shared PostgreSQL store)."""
    ray: RaySettings = Field(default_factory=RaySettings)
    """The Ray backend's cluster address and sharding."""

    def endpoint(self, key: str) -> EndpointSettings:
        """The limits configured for ``key`` (empty settings when none are)."""
        return self.endpoints.get(key, EndpointSettings())


_ENV = {
    "HELDOUT_DB_URL": "db_url",
    "HELDOUT_EVAL_JUDGE": "eval_judge",
    "HELDOUT_TRAINING_JUDGE": "training_judge",
    "OPENAI_API_KEY": "openai_api_key",
    "OPENAI_BASE_URL": "openai_base_url",
    "HELDOUT_BACKEND": "backend",
}
_SERVER_ENV = {
    "HELDOUT_HOST": "host",
    "HELDOUT_PORT": "port",
    "HELDOUT_TOKEN": "token",
    "HELDOUT_DASHBOARD_TOKEN": "dashboard_token",
    "HELDOUT_COHORTS": "cohorts",
}


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read settings from ``path`` (default ``./heldout.toml`` if present) and the environment.

    Raises:
        ConfigError: The file is not valid TOML or has unknown or invalid fields.
    """
    file = Path(path) if path is not None else Path(CONFIG_FILE)
    data: dict[str, Any] = {}
    if path is not None or file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{file}: config file not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    for env, field in _ENV.items():
        if os.environ.get(env):
            data[field] = os.environ[env]
    for env, field in _SERVER_ENV.items():
        if os.environ.get(env):
            data.setdefault("server", {})[field] = os.environ[env]
    if os.environ.get("HELDOUT_RAY_ADDRESS"):
        data.setdefault("ray", {})["address"] = os.environ["HELDOUT_RAY_ADDRESS"]
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{file}: invalid settings: {problems}") from exc
