"""The event catalogue in docs/catalog is generated from the code and kept current."""

from __future__ import annotations

from pathlib import Path

from trialstream.catalog import CONTRACTS, asyncapi, documents
from trialstream.events.topics import Topic
from trialstream.services import discover_services

CATALOG = Path(__file__).resolve().parents[2] / "docs" / "catalog"


def test_every_topic_declares_the_contracts_it_carries() -> None:
    assert set(CONTRACTS) == set(Topic)


def test_every_consumed_topic_has_a_producer() -> None:
    services = discover_services()
    produced = {t for s in services for t in s.produces}
    consumed = {t for s in services for t in s.consumes}
    assert consumed <= produced, consumed - produced


def test_the_asyncapi_document_names_every_topic_and_its_senders() -> None:
    document = asyncapi(discover_services())
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == {str(t) for t in Topic}
    assert "anomaly.send.alerts" in document["operations"]
    assert "monitoring.receive.alerts" in document["operations"]
    payload = document["components"]["messages"]["ReadingReceived"]["payload"]
    assert {"participant_id", "measured_at", "value", "unit"} <= set(payload["properties"])


def test_the_checked_in_catalogue_is_current() -> None:
    expected = documents(discover_services())
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in CATALOG.glob("*.json")}
    stale = sorted(n for n in expected.keys() | on_disk.keys() if expected.get(n) != on_disk.get(n))
    assert not stale, f"docs/catalog is stale ({', '.join(stale)}): run `make catalog`"
