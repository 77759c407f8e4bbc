"""Each service's Kafka identity may touch only what it declares (deploy/k8s/kafka)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from trialstream.acls import render
from trialstream.events.topics import Topic
from trialstream.services import discover_services

USERS = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "kafka" / "users.yaml"


def users() -> dict[str, list[dict[str, Any]]]:
    docs = [d for d in yaml.safe_load_all(USERS.read_text()) if d]
    return {d["metadata"]["name"]: d["spec"]["authorization"]["acls"] for d in docs}


def writers(topic: Topic) -> set[str]:
    return {
        name
        for name, acls in users().items()
        for acl in acls
        if acl["resource"] == {"type": "topic", "name": str(topic), "patternType": "literal"}
        and "Write" in acl["operations"]
    }


def test_the_manifest_is_generated_from_the_current_declarations() -> None:
    assert USERS.read_text() == render(discover_services()), "run `trialstream acls`"


def test_only_ingest_may_write_participants_and_readings() -> None:
    assert writers(Topic.PARTICIPANTS) == {"trialstream-ingest"}
    assert writers(Topic.READINGS) == {"trialstream-ingest"}


def test_each_identity_reads_only_its_own_groups_and_nothing_is_a_wildcard() -> None:
    declared = {f"trialstream-{s.name}": {g.name for g in s.groups} for s in discover_services()}
    for name, acls in users().items():
        groups = {a["resource"]["name"] for a in acls if a["resource"]["type"] == "group"}
        assert groups == declared[name]
        assert all(a["resource"]["patternType"] == "literal" for a in acls)
        assert all("*" not in a["resource"]["name"] for a in acls)
        assert not {op for a in acls for op in a["operations"]} - {"Read", "Write", "Describe"}


def test_every_topic_has_exactly_the_writers_its_producers_declare() -> None:
    for topic in Topic:
        producers = {f"trialstream-{s.name}" for s in discover_services() if topic in s.produces}
        if topic is Topic.DEAD_LETTER:
            producers = {f"trialstream-{s.name}" for s in discover_services() if s.groups}
        if topic is Topic.AUDIT_HEADS:  # every service keeps an audit chain
            producers = {f"trialstream-{s.name}" for s in discover_services()}
        assert writers(topic) == producers, topic
