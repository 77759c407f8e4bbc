"""`trialstream study`: declare a study from its file (issue 15, decision 0072).

    trialstream study check study.yaml           # validate only, every problem by field
    trialstream study apply study.yaml --dry-run # validate, show the diff, change nothing
    trialstream study apply study.yaml           # validate, show the diff, apply (idempotent)
    trialstream study show CARDIO-1              # the current definition and its version

The identity service keeps, versions and audits the definition and announces it to every
service. Credentials: `TRIALSTREAM_TOKEN` (a study admin's or platform admin's access
token), else `TRIALSTREAM_ADMIN_TOKEN` (the bootstrap token).
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml

from trialstream.studies import StudyDefinition, StudyFileError, load_study

app = typer.Typer(help="Study definitions: check, apply (with a diff, or a dry run), show.")

IssuerUrl = Annotated[
    str, typer.Option("--url", envvar="TRIALSTREAM_IDENTITY_URL", help="The identity service.")
]
DEFAULT_URL = "http://127.0.0.1:8007"


def _auth() -> dict[str, str]:
    token = os.environ.get("TRIALSTREAM_TOKEN") or os.environ.get("TRIALSTREAM_ADMIN_TOKEN")
    if not token:
        typer.secho(
            "set TRIALSTREAM_TOKEN (a study admin's access token) or TRIALSTREAM_ADMIN_TOKEN",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    return {"Authorization": f"Bearer {token}"}


def _load(path: Path) -> StudyDefinition:
    try:
        return load_study(path)
    except StudyFileError as exc:
        typer.secho(f"{path}: not a valid study definition", fg=typer.colors.RED, err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(2) from None


def _yaml(document: Any) -> list[str]:
    return yaml.safe_dump(document, sort_keys=True, allow_unicode=True).splitlines(keepends=True)


def diff(current: dict[str, Any] | None, wanted: StudyDefinition) -> str:
    """What applying would change, as a unified diff of the two definitions."""
    before = _yaml(current) if current is not None else []
    after = _yaml(wanted.model_dump(mode="json"))
    return "".join(difflib.unified_diff(before, after, "current", "file"))


def _fail(response: httpx.Response) -> None:
    try:
        error = response.json()["error"]
        details = "".join(f"\n  {d.get('field')}: {d.get('message')}" for d in error["details"])
        message = f"{error['code']}: {error['message']}{details}"
    except (ValueError, KeyError, TypeError):
        message = response.text
    typer.secho(f"refused ({response.status_code}) {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _current(client: httpx.Client, url: str, study_id: str) -> dict[str, Any] | None:
    response = client.get(f"{url}/v1/studies/{study_id}", headers=_auth())
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        _fail(response)
    return dict(response.json())


@app.command()
def check(path: Path) -> None:
    """Validate a study file; every problem is named by its field."""
    study = _load(path)
    typer.echo(
        f"{path}: study {study.study_id} is valid ({len(study.sites)} sites, modules "
        f"{', '.join(sorted(map(str, study.modules)))})"
    )


@app.command()
def apply(
    path: Path,
    url: IssuerUrl = DEFAULT_URL,
    dry_run: Annotated[bool, typer.Option(help="Show what would change; change nothing.")] = False,
) -> None:
    """Apply a study file: show the diff against the current version, then apply it (the
    same file again changes nothing)."""
    study = _load(path)
    url = url.rstrip("/")
    try:
        with httpx.Client(timeout=30) as client:
            current = _current(client, url, study.study_id)
            changes = diff(None if current is None else current["definition"], study)
            if not changes:
                typer.echo(
                    f"{study.study_id}: unchanged (version {current['version'] if current else '-'})"
                )
                return
            typer.echo(changes, nl=False)
            if dry_run:
                typer.echo(f"{study.study_id}: dry run, nothing applied")
                return
            response = client.put(
                f"{url}/v1/studies/{study.study_id}",
                json=study.model_dump(mode="json"),
                headers=_auth(),
            )
    except httpx.HTTPError as exc:
        typer.secho(
            f"the identity service at {url} cannot be reached: {exc}", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(2) from None
    if response.status_code != 200:
        _fail(response)
    done = response.json()
    typer.echo(f"{study.study_id}: version {done['version']} applied")


@app.command()
def show(study_id: str, url: IssuerUrl = DEFAULT_URL) -> None:
    """The study's current definition (JSON) and version."""
    with httpx.Client(timeout=30) as client:
        current = _current(client, url.rstrip("/"), study_id)
    if current is None:
        typer.secho(f"no study {study_id}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(current, indent=2, default=str))
