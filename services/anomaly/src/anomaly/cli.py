"""`trialstream replay`, registered through the `trialstream.commands` entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from anomaly.config import ScoringConfig
from anomaly.replay import ReplayError, describe, replay_file


def replay(
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            exists=True,
            dir_okay=False,
            readable=True,
            help="JSONL of readings in the device contract, in arrival order.",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", dir_okay=False, help="Where to write alerts, one JSON per line."),
    ],
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Stop at the first invalid line instead of skipping it."),
    ] = False,
    device_mix: Annotated[
        bool,
        typer.Option(
            "--device-mix",
            help="Score with the rules-3.1 device-mix profile (trial definitions, persistence "
            "in time, irregular rhythm, small baseline shifts).",
        ),
    ] = False,
) -> None:
    """Score a JSONL file of readings offline with the live scoring code; write alerts as JSONL."""
    try:
        config = ScoringConfig.device_mix() if device_mix else None
        stats = replay_file(input, output, strict=strict, config=config)
    except ReplayError as exc:
        for message in describe(exc.line, exc.rejected):
            typer.echo(message, err=True)
        typer.echo(f"stopped at line {exc.line} (--strict); no output written", err=True)
        raise typer.Exit(1) from None
    typer.echo(stats.summary())
