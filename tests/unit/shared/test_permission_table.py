"""The README's permission matrix is the one the code enforces."""

from __future__ import annotations

from pathlib import Path

from trialstream.identity import PERMISSIONS, Action, Role

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_matrix_is_the_code_matrix() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- permissions:start -->")[1].split("<!-- permissions:end -->")[0]
    rows = [line.strip("|").split("|") for line in table.strip().splitlines()[2:]]
    header = [c.strip() for c in table.strip().splitlines()[0].strip("|").split("|")][1:]
    assert header == [str(r) for r in Role]
    written = {
        Action(cells[0].strip()): frozenset(
            Role(role)
            for role, cell in zip(header, cells[1:], strict=True)
            if cell.strip() == "yes"
        )
        for cells in rows
    }
    assert written == dict(PERMISSIONS)
