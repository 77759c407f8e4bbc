"""`trialstream replay`, registered through the `trialstream.commands` entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from trialstream.studies import ScoringProfile

from anomaly.config import DEFAULT_PROFILE, ScoringConfig
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
    profile: Annotated[
        ScoringProfile,
        typer.Option(
            "--profile",
            help="The scoring profile: device-mix (the default: trial definitions, "
            "persistence in time scaled to each device's cadence, exertion inferred without "
            "steps, irregular rhythm, small baseline shifts) or classic (NEWS2 bands, "
            "persistence in reading counts, for minute-cadence watches that send steps).",
        ),
    ] = DEFAULT_PROFILE,
    device_mix: Annotated[
        bool,
        typer.Option("--device-mix", help="The same as --profile device-mix.", hidden=True),
    ] = False,
) -> None:
    """Score a JSONL file of readings offline with the live scoring code; write alerts as JSONL."""
    try:
        config = ScoringConfig.of_profile(ScoringProfile.DEVICE_MIX if device_mix else profile)
        stats = replay_file(input, output, strict=strict, config=config)
    except ReplayError as exc:
        for message in describe(exc.line, exc.rejected):
            typer.echo(message, err=True)
        typer.echo(f"stopped at line {exc.line} (--strict); no output written", err=True)
        raise typer.Exit(1) from None
    typer.echo(stats.summary())
