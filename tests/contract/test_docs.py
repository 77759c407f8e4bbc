"""The documents a newcomer walks stay in step with what is on disk."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DECISIONS = ROOT / "docs" / "decisions"


def test_every_decision_record_has_a_line_in_the_index() -> None:
    index = (DECISIONS / "README.md").read_text()
    listed = set(re.findall(r"\]\((\d{4}-[^)]+\.md)\)", index))
    on_disk = {p.name for p in DECISIONS.glob("[0-9][0-9][0-9][0-9]-*.md")}
    assert listed == on_disk, {"missing": on_disk - listed, "stale": listed - on_disk}


def test_each_record_has_one_number() -> None:
    numbers = [p.name[:4] for p in DECISIONS.glob("[0-9][0-9][0-9][0-9]-*.md")]
    assert len(numbers) == len(set(numbers))


def test_the_readme_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(((?:docs|deploy|services|benchmarks)/[^)#]+)", readme)
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, missing
