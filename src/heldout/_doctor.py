"""Checks that heldout can run here, each with the fix when it cannot."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

import httpx2 as httpx

from heldout._errors import HeldoutError
from heldout.config import Settings, load_settings
from heldout.judges._spec import JudgeSpec


@dataclass(frozen=True)
class Check:
    """One check's outcome.

    Attributes:
        name: What was checked.
        ok: Whether it passed.
        detail: What was found.
        fix: What to do when it failed.
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_checks(config: str | None = None, *, probe_endpoints: bool = True) -> list[Check]:
    """Check the config, the store, the judges and the embedded model."""
    try:
        settings = load_settings(config)
    except HeldoutError as exc:
        return [Check("config", False, str(exc), "fix the file or the environment variable named")]
    checks = [Check("config", True, "settings loaded")]
    checks.append(_check_store(settings))
    specs = [("eval judge", settings.eval_judge)]
    if settings.training_judge:
        specs.append(("training judge", settings.training_judge))
    for role, spec in specs:
        checks.append(_check_judge(role, spec, settings, probe_endpoints))
    checks.extend(_check_local(settings))
    return checks


def _check_store(settings: Settings) -> Check:
    from heldout.store import Store

    try:
        store = Store.open(settings.db_url)
    except HeldoutError as exc:
        return Check("store", False, str(exc), "set HELDOUT_DB_URL to a reachable database")
    store.close()
    return Check("store", True, f"{store.dialect} store at {store.url} is migrated")


def _check_judge(role: str, spec: str, settings: Settings, probe: bool) -> Check:
    try:
        parsed = JudgeSpec.parse(spec)
    except HeldoutError as exc:
        return Check(role, False, str(exc), "set HELDOUT_EVAL_JUDGE to e.g. local:qwen2.5-1.5b")
    if parsed.provider == "local":
        return Check(role, True, f"{spec} (embedded, checked below)")
    base_url = parsed.base_url or settings.openai_base_url
    if parsed.provider == "ollama" and base_url is None:
        base_url = "http://localhost:11434/v1"
    base_url = base_url or "https://api.openai.com/v1"
    if "api.openai.com" in base_url and not settings.openai_api_key:
        return Check(role, False, f"{spec}: no API key for {base_url}", "set OPENAI_API_KEY")
    if not probe:
        return Check(role, True, f"{spec} at {base_url} (not probed)")
    headers = {"Authorization": f"Bearer {settings.openai_api_key or 'not-needed'}"}
    try:
        response = httpx.get(f"{base_url.rstrip('/')}/models", headers=headers, timeout=5.0)
    except httpx.HTTPError as exc:
        return Check(
            role,
            False,
            f"{spec}: {base_url} did not answer ({type(exc).__name__})",
            "start the server or fix the base URL in the spec (model@http://host:port/v1)",
        )
    if response.status_code >= 400:
        return Check(
            role,
            False,
            f"{spec}: GET {base_url}/models answered {response.status_code}",
            "check the API key and the base URL",
        )
    return Check(role, True, f"{spec} at {base_url} answers")


def _check_local(settings: Settings) -> list[Check]:
    from heldout.judges._model_files import model_status

    checks = []
    try:
        version = importlib.metadata.version("llama-cpp-python")
        import llama_cpp  # noqa: F401

        checks.append(Check("llama-cpp-python", True, f"version {version} imports"))
    except (importlib.metadata.PackageNotFoundError, ImportError) as exc:
        checks.append(
            Check(
                "llama-cpp-python",
                False,
                f"not usable: {exc}",
                "uv sync --extra local (compiles llama.cpp, about 3 minutes on 2 cores)",
            )
        )
    status = model_status("qwen2.5-1.5b", settings)
    checks.append(Check("embedded model", status.ok, status.message, status.fix))
    return checks
