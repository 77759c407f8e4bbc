"""`trialstream replay`, registered through the trialstream.commands entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from anomaly.replay import ReplayError, replay_file


def replay(
    input: Annotated[
        Path,
        typer.Option(
            "--input", exists=True, dir_okay=False, help="JSONL of readings, in time order."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", dir_okay=False, help="Where to write alerts, one JSON per line."),
    ],
    strict: Annotated[
        bool, typer.Option(help="Stop at the first invalid line instead of skipping it.")
    ] = False,
) -> None:
    """Score a JSONL file of readings offline with the live scoring code; write alerts as JSONL."""
    try:
        stats = replay_file(input, output, strict=strict)
    except ReplayError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{stats.readings} readings, {stats.rejected} rejected, {stats.alerts} alerts "
        f"in {stats.seconds:.2f} s ({stats.per_second:,.0f} readings/s)"
    )
