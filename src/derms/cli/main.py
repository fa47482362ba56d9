"""``derms``: serve the platform, run the demo, migrate the database, manage the fleet and users."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from derms import __version__
from derms.core.clock import SystemClock
from derms.core.errors import DermsError, ValidationFailed
from derms.logs import configure
from derms.settings import Settings

app = typer.Typer(
    name="derms",
    help="derms: a Distributed Energy Resource Management System.\n\n"
    "Configuration comes from DERMS_* environment variables (DERMS_DATABASE_URL, DERMS_BUS_URL, ...).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
fleet_app = typer.Typer(help="Import and export the DER registry.", no_args_is_help=True)
users_app = typer.Typer(help="Tenants, users and API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(fleet_app, name="fleet")
app.add_typer(users_app, name="users")
console = Console(stderr=True)

PROTOCOL_CLIS = {
    "ieee2030_5": "certs",
    "openadr": "openadr",
    "ocpp": "ocpp",
    "sunspec": "sunspec",
    "dnp3": "dnp3",
    "cta2045": "cta2045",
}
"""Protocol packages that may contribute a command group (``<pkg>.cli:cli``), and its name."""


def _mount_protocol_clis() -> None:
    for name, command in PROTOCOL_CLIS.items():
        try:
            module = importlib.import_module(f"derms.adapters.{name}.cli")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(f"derms.adapters.{name}"):
                continue
            raise
        app.add_typer(module.cli, name=command)


@app.callback()
def main(
    log_json: Annotated[bool, typer.Option("--log-json", help="Log JSON lines instead of text.")] = False,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    configure(json=log_json, level=log_level.upper())


@app.command()
def version() -> None:
    """Print the derms version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default DERMS_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="API port (default DERMS_PORT or 8080).")] = None,
) -> None:
    """Run the platform: API, bus, fleet tracking and telemetry persistence; with a grid model
    (DERMS_NETWORK, e.g. mv_oberrhein) and a registered fleet, the orchestration service too."""
    from derms.serve import serve_forever

    settings = Settings()
    asyncio.run(serve_forever(settings, host=host or settings.host, port=port or settings.port))


@app.command()
def demo(
    headless: Annotated[
        bool, typer.Option(help="Do not wait for a browser: run, print a summary, exit.")
    ] = False,
    duration: Annotated[
        float, typer.Option(help="Wall-clock seconds to run (0 = until Ctrl-C).", min=0)
    ] = 0.0,
    ders: Annotated[
        int, typer.Option("--ders", help="Number of simulated DERs (at least 2,000 by default).", min=10)
    ] = 2000,
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall second.", min=1)] = 120.0,
    network: Annotated[
        str, typer.Option(help="pandapower-shipped network to attach the fleet to.")
    ] = "mv_oberrhein",
    port: Annotated[int, typer.Option(help="API and console port.")] = 8080,
    database: Annotated[Path, typer.Option(help="SQLite file for the demo (recreated each run).")] = Path(
        "var/demo.sqlite"
    ),
    seed: Annotated[int, typer.Option(help="Fleet generator seed.")] = 7,
    protocol_devices: Annotated[
        int,
        typer.Option(
            help="Simulated devices per protocol over the real stacks (2030.5, OpenADR, OCPP, SunSpec, "
            "CTA-2045; half as many DNP3 plants); 0 for none.",
            min=0,
        ),
    ] = 2,
    objective_hour: Annotated[
        float,
        typer.Option(
            help="Local hour of the simulated day (it starts at midnight) at which the demo operator "
            "asks for a feeder peak reduction; negative for none.",
        ),
    ] = 17.0,
) -> None:
    """Run the demo on the embedded default: a real network, a simulated fleet, an accelerated summer day."""
    from derms.demo import DemoOptions, run_demo

    options = DemoOptions(
        headless=headless,
        duration_s=duration,
        n_ders=ders,
        speed=speed,
        network=network,
        port=port,
        database=database,
        seed=seed,
        protocol_devices=protocol_devices,
        objective_hour=objective_hour,
    )
    raise typer.Exit(asyncio.run(run_demo(options, console)))


@app.command()
def backtest(
    quick: Annotated[bool, typer.Option(help="Smaller load model, for a fast look.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Score our load and PV forecasts against persistence and seasonal-naive on real data
    (MAE, nMAE, pinball loss, P10-P90 coverage)."""
    import dataclasses
    import json

    from derms.forecast.backtest import format_table, run_backtest

    with console.status("fitting and scoring forecasts"):
        rows = run_backtest(quick=quick)
    typer.echo(
        json.dumps([dataclasses.asdict(r) for r in rows], indent=1) if json_out else format_table(rows)
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "heads") -> None:
    """Apply every pending migration (core and each protocol's branch)."""
    from derms.store import make_engine, upgrade

    engine = make_engine(Settings().database_url)
    upgrade(engine, revision)
    console.print(f"[green]database at {engine.url.render_as_string(hide_password=True)} is at {revision}")


@fleet_app.command("import")
def fleet_import(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .csv or .json fleet file.")],
) -> None:
    """Import customers, sites and DERs; nothing is written if any row is invalid."""
    from derms.cli.fleet_io import import_fleet
    from derms.store import make_engine, upgrade

    engine = make_engine(Settings().database_url)
    upgrade(engine)
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("registering DERs", total=None)
            counts = import_fleet(
                engine, path, clock=SystemClock(), actor="cli", progress=lambda n: progress.advance(task, n)
            )
    except ValidationFailed as exc:
        for problem in exc.errors[:50]:
            console.print(f"[red]{problem}")
        console.print(f"[red]import refused: {len(exc.errors)} problem(s); nothing was written")
        raise typer.Exit(1) from exc
    except DermsError as exc:
        console.print(f"[red]import refused: {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"[green]imported {counts['ders']} DERs, {counts['sites']} sites, {counts['customers']} customers"
    )


@fleet_app.command("export")
def fleet_export(
    path: Annotated[Path, typer.Argument(dir_okay=False, help="Destination .csv or .json file.")],
) -> None:
    """Export every DER with its site and customer."""
    from derms.cli.fleet_io import export_fleet
    from derms.store import make_engine, upgrade

    engine = make_engine(Settings().database_url)
    upgrade(engine)
    count = export_fleet(engine, path)
    console.print(f"[green]exported {count} DERs to {path}")


@users_app.command("add-tenant")
def add_tenant(
    tenant_id: str,
    name: str,
    kind: Annotated[str, typer.Option(help="utility or aggregator")] = "aggregator",
) -> None:
    """Create a tenant (the utility, or an aggregator account)."""
    from derms.store import make_engine, upgrade
    from derms.store import registry as reg

    engine = make_engine(Settings().database_url)
    upgrade(engine)
    with engine.begin() as conn:
        reg.create_tenant(
            conn, tenant_id=tenant_id, name=name, kind=kind, at=SystemClock().now(), actor="cli"
        )
    console.print(f"[green]tenant {tenant_id} created")


@users_app.command("add")
def add_user(
    username: str,
    tenant_id: Annotated[str, typer.Option("--tenant", help="Tenant the user belongs to.")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin")] = "viewer",
) -> None:
    """Create a user and print its API token (shown once; only its hash is stored)."""
    from derms.api.auth import Role, create_user, issue_token
    from derms.store import audit, make_engine, upgrade

    engine = make_engine(Settings().database_url)
    upgrade(engine)
    clock = SystemClock()
    with engine.begin() as conn:
        user_id = create_user(
            conn, username=username, tenant_id=tenant_id, role=Role.parse(role), at=clock.now()
        )
        token = issue_token(conn, user_id=user_id, at=clock.now(), label="cli")
        audit.append(
            conn,
            at=clock.now(),
            actor="cli",
            action="user.create",
            target=f"user/{username}",
            tenant_id=tenant_id,
            detail={"role": role},
        )
    typer.echo(token)


_mount_protocol_clis()

if __name__ == "__main__":
    app()
