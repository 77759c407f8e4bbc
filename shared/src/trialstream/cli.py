"""The `trialstream` command. Service commands (e.g. `replay`) are found through the
`trialstream.commands` entry point group, so this library never imports a service."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from trialstream.audit_cli import app as audit_app
from trialstream.services import ServiceInfo, discover_services
from trialstream.settings import CommonSettings
from trialstream.studies import StudyDefinition, StudyFileError, load_study
from trialstream.study_cli import app as study_app

app = typer.Typer(
    help="trialstream: an event-driven platform for decentralized clinical trials.",
    no_args_is_help=True,
)

app.add_typer(audit_app, name="audit")
app.add_typer(study_app, name="study")

STATE_DIR = Path(".trialstream")


def _parse_scale(values: list[str], services: list[ServiceInfo]) -> dict[str, int]:
    names = {s.name for s in services}
    scale = dict.fromkeys(names, 1)
    for value in values:
        name, sep, count = value.partition("=")
        if not sep or name not in names or not count.isdigit() or not 1 <= int(count) <= 9:
            raise typer.BadParameter(
                f"'{value}': expected SERVICE=N with SERVICE one of {', '.join(sorted(names))} and N in 1..9",
                param_hint="--scale",
            )
        scale[name] = int(count)
    return scale


def _raise_keyboard_interrupt(*_: object) -> NoReturn:
    raise KeyboardInterrupt


@app.command()
def up(
    scale: Annotated[
        list[str],
        typer.Option(help="SERVICE=N: run N processes of a service in one consumer group."),
    ] = [],  # noqa: B006
    simulate: Annotated[bool, typer.Option(help="Start a simulated fleet of wearables.")] = True,
    restart: Annotated[
        bool,
        typer.Option(
            help="Restart a service process that dies (its replicas take over meanwhile)."
        ),
    ] = True,
    participants: Annotated[
        int, typer.Option(min=1, max=5000, help="Simulated participants.")
    ] = 12,
    speed: Annotated[
        float,
        typer.Option(min=1, help="Simulated minutes per wall-clock minute while catching up."),
    ] = 60.0,
    study: Annotated[
        list[Path],
        typer.Option(help="A study file to apply at start; the simulated fleet spreads over them."),
    ] = [],  # noqa: B006
) -> None:
    """Run the whole platform locally: broker, database, every service, and simulated devices.

    Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set, else starts embedded ones."""
    from trialstream.supervisor import (
        Infrastructure,
        Supervisor,
        SupervisorError,
        child_env,
        run_prepare,
    )

    services = discover_services()
    if not services:
        raise typer.BadParameter("no services are installed (run `make install`)")
    replicas = _parse_scale(scale, services)
    studies = [_study_or_exit(path) for path in study]
    settings = CommonSettings()
    run_dir = STATE_DIR / time.strftime("run-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    # SIGINT too: a shell starts background jobs with SIGINT ignored, and `kill -INT` (an
    # operator's Ctrl-C by pid) must still stop everything cleanly.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _raise_keyboard_interrupt)

    typer.echo("starting infrastructure ...")
    infra = Infrastructure.resolve(os.environ, run_dir)
    admin_token = (
        settings.admin_token.get_secret_value()
        if settings.admin_token
        else secrets.token_urlsafe(24)
    )
    supervisor = Supervisor(
        child_env(infra, admin_token),
        run_dir,
        restart=restart,
        own_database_logins=infra.embedded_postgres is not None,
    )
    try:
        run_prepare(infra, services, settings.topic_partitions)
        for info in services:
            for replica in range(replicas[info.name]):
                supervisor.spawn_service(info, replica)
        typer.echo(f"starting {len(supervisor.children)} service processes ...")
        supervisor.wait_ready()
        issuer = next(
            (f"http://127.0.0.1:{i.port_of(0)}" for i in services if i.name == "identity"), None
        )
        for definition in studies:
            if issuer is None:
                raise typer.BadParameter("--study needs the identity service", param_hint="--study")
            typer.echo(_apply_study(issuer, definition, admin_token))
        credentials = run_dir / "demo-credentials.json"
        if simulate:
            files = [arg for path in study for arg in ("--study", str(path))]
            supervisor.spawn(
                "simulator",
                [
                    sys.executable,
                    "-m",
                    "trialstream.cli",
                    "simulate",
                    "--participants",
                    str(participants),
                    "--speed",
                    str(speed),
                    "--credentials-out",
                    str(credentials),
                    *files,
                ],
                {},
                None,
            )
        _print_banner(infra, services, replicas, admin_token, run_dir)
        if simulate:
            _print_credentials(credentials, supervisor)
        typer.echo("Ctrl-C stops everything.")
        while True:
            for line in supervisor.restart_exited():
                typer.secho(line, fg=typer.colors.YELLOW, err=True)
            time.sleep(0.5)
    except SupervisorError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("\nstopping ...")
    finally:
        supervisor.stop_all()
        infra.stop()
        typer.echo("stopped.")


def _study_or_exit(path: Path) -> StudyDefinition:
    try:
        return load_study(path)
    except StudyFileError as exc:
        raise typer.BadParameter("; ".join(exc.problems), param_hint=f"--study {path}") from None


def _apply_study(issuer: str, definition: StudyDefinition, admin_token: str) -> str:
    """PUT the study at the identity service (the same as `trialstream study apply`)."""
    import httpx

    response = httpx.put(
        f"{issuer}/v1/studies/{definition.study_id}",
        json=definition.model_dump(mode="json"),
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=30,
    )
    response.raise_for_status()
    done = response.json()
    return f"study {definition.study_id}: version {done['version']} ({'applied' if done['changed'] else 'unchanged'})"


def _print_banner(
    infra: object,
    services: list[ServiceInfo],
    replicas: dict[str, int],
    admin_token: str,
    run_dir: Path,
) -> None:
    from trialstream.supervisor import Infrastructure

    assert isinstance(infra, Infrastructure)
    where = "embedded" if infra.embedded else "external"
    typer.echo("")
    typer.secho("trialstream is up", bold=True)
    typer.echo(f"  Kafka ({where}):      {infra.kafka_bootstrap_servers}")
    typer.echo(f"  PostgreSQL ({where}): {infra.database_url}")
    for info in services:
        ports = ", ".join(str(info.port_of(i)) for i in range(replicas[info.name]))
        typer.echo(
            f"  {info.name:<11} http://127.0.0.1:{info.port_of(0)}/docs  (replicas on ports {ports})"
        )
    typer.echo(f"  admin token:         {admin_token}")
    typer.echo(f"  logs:                {run_dir}/")


def _print_credentials(path: Path, supervisor: object) -> None:
    from trialstream.supervisor import Supervisor

    assert isinstance(supervisor, Supervisor)
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        supervisor.check_alive()
        time.sleep(0.2)
    if not path.exists():
        typer.echo("  (the simulator has not written its credentials yet; see simulator.log)")
        return
    creds = json.loads(path.read_text())
    typer.echo("  simulated wearables are uploading; staff sign-ins (name / password / role):")
    for staff in creds["staff"]:
        where = f"{staff['study_id']} / {staff['site_id']}"
        typer.echo(
            f"    {staff['staff_id']:<30} {staff['password']:<18} {staff['role']} in {where}"
        )
    first = creds["staff"][0]
    typer.echo(f"  an access token of {first['staff_id']} (15 min; sign in again for more):")
    typer.echo(f"    TOKEN={first['token']}")
    typer.echo(
        f"    curl -s -H \"Authorization: Bearer $TOKEN\" '{creds['monitoring_url']}/v1/alerts?status=open'"
    )
    typer.echo(
        "  a new token: curl -s -X POST http://127.0.0.1:8007/v1/token -H 'Content-Type: "
        'application/json\' -d \'{"grant_type": "password", "username": "<name>", '
        '"password": "<password>"}\''
    )
    typer.echo(
        f"  staff dashboard: {creds['monitoring_url']}/dashboard (sign in with a name and password above)"
    )


@app.command()
def migrate() -> None:
    """Create topics and apply every service's database migrations (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS)."""
    from trialstream.supervisor import Infrastructure, run_prepare

    settings = CommonSettings()
    infra = Infrastructure(settings.kafka_bootstrap_servers, settings.database_url)
    run_prepare(infra, discover_services(), settings.topic_partitions)
    typer.echo("topics and migrations are up to date")


@app.command()
def simulate(
    participants: Annotated[int, typer.Option(min=1, max=5000)] = 12,
    sites: Annotated[int, typer.Option(min=1, max=50)] = 2,
    speed: Annotated[
        float,
        typer.Option(min=1, help="Simulated minutes per wall-clock minute while catching up."),
    ] = 60.0,
    backfill_minutes: Annotated[
        int, typer.Option(min=0, help="Start this far in the past, then catch up.")
    ] = 90,
    duration: Annotated[
        float,
        typer.Option(
            min=0, help="Stop after this many wall-clock seconds (0 = run until stopped)."
        ),
    ] = 0,
    ingest_url: str = "http://127.0.0.1:8001",
    monitoring_url: str = "http://127.0.0.1:8002",
    identity_url: str = "http://127.0.0.1:8007",
    credentials_out: Annotated[
        Path | None, typer.Option(help="Write demo staff credentials here (JSON).")
    ] = None,
    seed: int = 7,
    study: Annotated[
        list[Path], typer.Option(help="Spread the fleet over these studies' sites (files).")
    ] = [],  # noqa: B006
) -> None:
    """Enrol simulated participants, devices and site staff, then stream readings over HTTPS."""
    import asyncio

    from trialstream.simulate import FleetConfig, run_fleet

    settings = CommonSettings()
    if settings.admin_token is None:
        raise typer.BadParameter("set TRIALSTREAM_ADMIN_TOKEN (printed by `trialstream up`)")
    config = FleetConfig(
        participants=participants,
        sites=sites,
        speed=speed,
        backfill_minutes=backfill_minutes,
        duration_seconds=duration,
        ingest_url=ingest_url,
        monitoring_url=monitoring_url,
        identity_url=identity_url,
        admin_token=settings.admin_token.get_secret_value(),
        credentials_out=credentials_out,
        seed=seed,
        studies=tuple(_study_or_exit(path) for path in study),
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_fleet(config))


@app.command()
def catalog(
    out: Annotated[Path, typer.Option(help="Folder for the documents.")] = Path("docs/catalog"),
) -> None:
    """Write the event catalogue (AsyncAPI) and each HTTP service's OpenAPI, from the code."""
    from trialstream.catalog import write

    for path in write(out, discover_services()):
        typer.echo(f"wrote {path}")


@app.command()
def acls(
    out: Annotated[Path, typer.Option(help="Folder for the manifest.")] = Path("deploy/k8s/kafka"),
) -> None:
    """Write each service's Kafka identity and ACLs (Strimzi KafkaUser), from the code."""
    from trialstream.acls import write

    typer.echo(f"wrote {write(out, discover_services())}")


def _register_plugin_commands() -> None:
    for ep in entry_points(group="trialstream.commands"):
        try:
            command = ep.load()
        except ImportError as exc:  # a half-installed service must not take the CLI down
            typer.secho(
                f"warning: command '{ep.name}' unavailable: {exc}", fg=typer.colors.YELLOW, err=True
            )
            continue
        app.command(ep.name)(command)


def main() -> None:
    _register_plugin_commands()
    app()


if __name__ == "__main__":
    main()
