"""``heldout serve`` and ``heldout ingest``: production traces and the dashboard.

The server's packages (FastAPI, uvicorn, the OTLP protobufs) are the ``serve`` extra,
imported only by these commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from heldout._errors import ConfigError, HeldoutError
from heldout.config import ServerSettings, Settings, load_settings
from heldout.store import Store

if TYPE_CHECKING:
    from heldout.tracing import CohortRules

console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    str | None, typer.Option("--config", help="Config file (default ./heldout.toml).")
]
CohortsOpt = Annotated[
    Path | None,
    typer.Option("--cohorts", help="Cohort rules YAML (default: server.cohorts in the config)."),
]


def serve_command(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8765).")] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="Token for ingest and labeling (default HELDOUT_TOKEN, else a random one).",
            envvar="HELDOUT_TOKEN",
            show_envvar=False,
        ),
    ] = None,
    dashboard_token: Annotated[
        bool, typer.Option("--dashboard-token", help="Require the token for the dashboard too.")
    ] = False,
    cohorts: CohortsOpt = None,
    evaluate_every: Annotated[
        str | None,
        typer.Option(
            "--evaluate-every",
            help="Evaluate every cohort with the rules' evaluators this often, e.g. 10m.",
        ),
    ] = None,
    judge: Annotated[
        str | None,
        typer.Option(
            help="Judge for scheduled evaluations and cohort classifiers (default: eval judge)."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Receive OTLP traces at POST /v1/traces and serve the dashboard."""
    import uvicorn

    from heldout.tracing import load_cohort_rules, parse_duration, refresh_cohorts
    from heldout.web import create_app

    settings = load_settings(config)
    server = _server_settings(
        settings.server,
        host=host,
        port=port,
        token=token,
        dashboard_token=dashboard_token or None,
        cohorts=str(cohorts) if cohorts else None,
    )
    made_token = server.token is None
    if made_token:
        server = server.model_copy(update={"token": secrets.token_urlsafe(24)})
    rules = load_cohort_rules(server.cohorts) if server.cohorts else None
    interval = parse_duration(evaluate_every) if evaluate_every else None
    if interval is not None and (rules is None or not rules.evaluators):
        raise ConfigError(
            "--evaluate-every needs cohort rules with an 'evaluators:' list (--cohorts FILE)"
        )
    store = Store.open(settings.db_url)
    try:
        if rules is not None:
            refresh_cohorts(store, rules)
        lifespan = None
        if interval is not None and rules is not None:
            lifespan = _scheduler(store, rules, settings, interval, judge)
        app = create_app(
            store, server, rules=rules, lifespan=lifespan, settings=settings, judge=judge
        )
        _announce(server, made_token, rules, interval)
        uvicorn.run(app, host=server.host, port=server.port, log_level="warning")
    finally:
        store.close()


def ingest_command(
    file: Annotated[Path, typer.Argument(help="An exported OTLP file: .json, .jsonl or .pb.")],
    cohorts: CohortsOpt = None,
    judge: Annotated[
        str | None, typer.Option(help="Judge for cohort classifiers (default: eval judge).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Store the traces of an exported OTLP file and place them in cohorts."""
    from heldout._sync import run_sync
    from heldout.tracing import load_cohort_rules, members_among, read_otlp_file, store_spans

    settings = load_settings(config)
    rules_path = str(cohorts) if cohorts else settings.server.cohorts
    rules = load_cohort_rules(rules_path) if rules_path else None
    spans = read_otlp_file(file)
    store = Store.open(settings.db_url)
    try:
        result = store_spans(store, spans, rules)
        console.print(
            f"stored {result.spans} spans of {result.traces} traces from {escape(str(file))}"
        )
        joined = result.joined
        if rules is not None and any(rule.classify for rule in rules.cohorts):
            from heldout.tracing import classify_traces

            for done in run_sync(classify_traces(store, rules, settings=settings, judge=judge)):
                again = " (judged again at the next ingest or refresh)" if done.errors else ""
                console.print(
                    f"  classifier of {escape(done.cohort)}: {done.judged} judged, "
                    f"{done.joined} let in, {done.errors} errors{again}, {done.skipped} skipped"
                )
            joined = members_among(store, [span.trace_id for span in spans])
    finally:
        store.close()
    for cohort, n in sorted(joined.items()):
        console.print(f"  cohort {escape(cohort)}: {n} of them")


def _server_settings(base: ServerSettings, **overrides: Any) -> ServerSettings:
    data = base.model_dump() | {k: v for k, v in overrides.items() if v is not None}
    try:
        return ServerSettings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"server.{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


def _announce(
    server: ServerSettings, made_token: bool, rules: CohortRules | None, interval: timedelta | None
) -> None:
    console.print(f"heldout serve: http://{escape(server.host)}:{server.port}/")
    console.print(f"  OTLP/HTTP traces: POST http://{escape(server.host)}:{server.port}/v1/traces")
    if made_token:
        console.print(f"  token (made for this run; set HELDOUT_TOKEN to keep one): {server.token}")
    if not _loopback(server.host):
        err.print(
            f"[yellow]warning:[/yellow] bound to {escape(server.host)}, reachable beyond "
            "this machine; the dashboard is open unless --dashboard-token is given"
        )
    if rules is not None:
        console.print(f"  cohorts: {escape(', '.join(r.name for r in rules.cohorts) or 'none')}")
    if interval is not None:
        console.print(f"  evaluating every cohort every {interval}")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _scheduler(
    store: Store, rules: CohortRules, settings: Settings, every: timedelta, judge: str | None
) -> Callable[[Any], AsyncIterator[None]]:
    """The app's lifespan: evaluate the cohorts now and then every ``every``."""
    from heldout.tracing import classify_traces, evaluate_cohorts, refresh_cohorts

    async def loop() -> None:
        while True:
            try:
                await asyncio.to_thread(refresh_cohorts, store, rules)
                for classified in await classify_traces(
                    store, rules, settings=settings, judge=judge
                ):
                    if classified.errors:
                        err.print(
                            f"[yellow]classifier of {escape(classified.cohort)}:[/yellow] "
                            f"{classified.errors} judge errors, judged again next time"
                        )
                done = await evaluate_cohorts(store, rules, settings=settings, judge=judge)
                for summary in done:
                    console.print(
                        f"evaluated {escape(summary.run_id)}: {summary.computed} scores, "
                        f"{summary.errors} errors"
                    )
            except HeldoutError as exc:
                err.print(f"[red]scheduled evaluation failed:[/red] {escape(str(exc))}")
            await asyncio.sleep(every.total_seconds())

    async def lifespan(_app: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan
