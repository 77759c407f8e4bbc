"""`trialstream audit verify | show`: check each service's hash chain, read entries."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import asyncpg
import typer
from aiokafka.errors import KafkaError

from trialstream.audit import entries
from trialstream.audit_heads import published_heads
from trialstream.audit_verify import ChainReport, Head, verify_chain
from trialstream.services import ServiceInfo, discover_services
from trialstream.settings import CommonSettings

app = typer.Typer(help="The hash-chained audit trail of every service (docs/audit.md).")


def _services(only: list[str]) -> list[ServiceInfo]:
    found = discover_services()
    names = {s.name for s in found}
    unknown = sorted(set(only) - names)
    if unknown:
        raise typer.BadParameter(
            f"unknown service {', '.join(unknown)}; installed: {', '.join(sorted(names))}",
            param_hint="--service",
        )
    return [s for s in found if not only or s.name in only]


def _heads(values: list[str], services: list[ServiceInfo]) -> dict[str, Head]:
    names = {s.name for s in services}
    heads = {}
    for value in values:
        name, sep, text = value.partition("=")
        try:
            if not sep or name not in names:
                raise ValueError(f"expected SERVICE=SEQ:HASH with SERVICE one of {sorted(names)}")
            heads[name] = Head.parse(text)
        except ValueError as exc:
            raise typer.BadParameter(f"'{value}': {exc}", param_hint="--expect-head") from None
    return heads


async def _verify_all(
    dsn: str, services: list[ServiceInfo], heads: dict[str, Head]
) -> list[tuple[ServiceInfo, ChainReport]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [
            (s, await verify_chain(conn, s.schema, expect_head=heads.get(s.name))) for s in services
        ]
    finally:
        await conn.close()


@app.command()
def verify(
    service: Annotated[
        list[str], typer.Option("--service", "-s", help="Only this service (repeatable).")
    ] = [],  # noqa: B006
    expect_head: Annotated[
        list[str],
        typer.Option(
            help="SERVICE=SEQ:HASH, a head printed by an earlier verify: it must still be in "
            "the chain (finds rows deleted from the end). Repeatable."
        ),
    ] = [],  # noqa: B006
    published: Annotated[
        bool,
        typer.Option(
            "--published",
            help="Also check each chain against the latest head its service published to "
            "the audit-heads topic (KAFKA_BOOTSTRAP_SERVERS); --expect-head wins per service.",
        ),
    ] = False,
) -> None:
    """Walk every service's chain (DATABASE_URL); print rows checked and the head, or the
    first broken link. Exits 1 if any chain is broken."""
    services = _services(service)
    heads = _heads(expect_head, services)
    if published:
        bootstrap = CommonSettings().kafka_bootstrap_servers
        try:
            found = asyncio.run(published_heads(bootstrap, timeout_s=30))
        except (KafkaError, OSError, TimeoutError) as exc:
            typer.secho(
                f"cannot read the published heads from {bootstrap} (KAFKA_BOOTSTRAP_SERVERS): "
                f"{exc!r}",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(2) from None
        for info in services:
            if info.name not in found and info.name not in heads:
                typer.echo(f"{info.name}: no head published yet (checked without one)")
        heads = {**{s.name: found[s.name] for s in services if s.name in found}, **heads}
    reports = asyncio.run(_verify_all(CommonSettings().database_url, services, heads))
    width = max(len(s.name) for s, _ in reports)
    for info, report in reports:
        if report.ok:
            head = f"head {report.head}" if report.head else "empty"
            anchored = (
                f" (contains published head {heads[info.name]})" if info.name in heads else ""
            )
            typer.echo(f"{info.name:<{width}}  OK      {report.rows} rows  {head}{anchored}")
        else:
            typer.secho(
                f"{info.name:<{width}}  BROKEN  first broken link at {report.broken} "
                f"({report.rows} rows verified before it)",
                fg=typer.colors.RED,
            )
    if not all(r.ok for _, r in reports):
        raise typer.Exit(1)


@app.command()
def show(
    service: Annotated[
        str, typer.Option("--service", "-s", help="The service whose chain to read.")
    ],
    entity: Annotated[str | None, typer.Option(help="e.g. alert, booking, device.")] = None,
    entity_id: Annotated[str | None, typer.Option(help="The entity's id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="The latest N entries.")] = 100,
) -> None:
    """Print audit entries as JSON lines, oldest first (does not verify: use `verify`)."""
    (info,) = _services([service])

    async def read() -> list[str]:
        conn = await asyncpg.connect(
            CommonSettings().database_url, server_settings={"search_path": info.schema}
        )
        try:
            found = await entries(conn, entity=entity, entity_id=entity_id, limit=limit)
        finally:
            await conn.close()
        return [json.dumps(e.as_dict(), ensure_ascii=False) for e in found]

    for line in asyncio.run(read()):
        typer.echo(line)
