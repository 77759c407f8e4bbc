"""Every service has the same shape, so a newcomer who knows one knows them all.

    api.py (or api/)               routes: module-level APIRouters with typed dependencies
    subscribers.py                 what each declared consumer group does (if it consumes)
    service.py (or service/)       use cases
    domain.py (or domain/)         pure, typed: no database, broker or HTTP
    repository.py (or repository/) SQL
    settings.py, service_info.py, main.py (the composition root), migrations/

A sub-package only where a file outgrows about 400 lines. Refusals are
`trialstream.errors.Refused`; nothing else is raised for HTTP. Consumer groups are
declared in service_info.py (checked at start-up by `trialstream.runtime`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from trialstream.services import discover_services

SERVICES = Path(__file__).resolve().parents[2] / "services"
NAMES = sorted(p.name for p in SERVICES.iterdir() if (p / "pyproject.toml").exists())
# Services still being moved to the shape: none since issue 20. Keep the hook for a new
# service that arrives in an older shape.
PENDING: set[str] = set()
REQUIRED = ("api", "service", "domain", "repository", "settings", "service_info", "main")
# Files of the old shapes: each has its place above now.
RETIRED = ("handlers", "routes_people", "routes_bookings", "bookings_repo", "dashboard")
LONGEST = 500  # lines; past this, a module becomes a package
IMPURE = ("asyncpg", "aiokafka", "faststream", "fastapi", "starlette", "httpx")


def package(name: str) -> Path:
    return SERVICES / name / "src" / name


def has(pkg: Path, module: str) -> bool:
    return (pkg / f"{module}.py").is_file() or (pkg / module / "__init__.py").is_file()


def modules(pkg: Path) -> list[Path]:
    return sorted(pkg.rglob("*.py"))


def services() -> list[object]:
    return [
        pytest.param(n, marks=pytest.mark.xfail(strict=False, reason="not in shape yet"))
        if n in PENDING
        else n
        for n in NAMES
    ]


def test_the_services_are_the_ones_discovered() -> None:
    assert sorted(s.name for s in discover_services()) == NAMES


@pytest.mark.parametrize("name", services())
def test_every_part_has_its_file(name: str) -> None:
    pkg = package(name)
    missing = [m for m in REQUIRED if not has(pkg, m)]
    assert not missing, f"{name} lacks {missing}"
    assert (pkg / "migrations").is_dir()
    info = next(s for s in discover_services() if s.name == name)
    assert has(pkg, "subscribers") == bool(info.groups), (
        f"{name}: subscribers.py exactly where the service declares consumer groups"
    )


@pytest.mark.parametrize("name", services())
def test_no_file_of_an_old_shape_is_left(name: str) -> None:
    stale = [p.name for p in modules(package(name)) if p.stem in RETIRED]
    assert not stale, f"{name}: {stale}"


@pytest.mark.parametrize("name", NAMES)
def test_no_module_outgrows_the_shape(name: str) -> None:
    long = {
        str(p.relative_to(package(name))): n
        for p in modules(package(name))
        if (n := len(p.read_text().splitlines())) > LONGEST
    }
    assert not long, f"{name}: split these into a package: {long}"


@pytest.mark.parametrize("name", services())
def test_the_domain_is_pure(name: str) -> None:
    pkg = package(name)
    domain = [pkg / "domain.py"] if (pkg / "domain.py").exists() else modules(pkg / "domain")
    for path in domain:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if n.split(".")[0] in IMPURE]
            assert not bad, f"{path.relative_to(SERVICES)} imports {bad}"


@pytest.mark.parametrize("name", services())
def test_refusals_are_the_one_shared_type(name: str) -> None:
    for path in modules(package(name)):
        text = path.read_text()
        assert "ApiError" not in text, f"{path.relative_to(SERVICES)} raises ApiError"
        for node in ast.walk(ast.parse(text)):
            # A fault may have its own type (`ReplayError`, `_Raced` for control flow);
            # a refusal a caller sees is a Refused.
            if isinstance(node, ast.ClassDef) and not node.name.endswith("Error"):
                bases = {ast.unparse(b) for b in node.bases}
                assert node.name.startswith("_") or not bases & {"Exception", "HTTPException"}, (
                    f"{path.relative_to(SERVICES)}: {node.name} is its own error type;"
                    " raise trialstream.errors.Refused"
                )
