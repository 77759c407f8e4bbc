"""deploy/k8s stays deployable: every service has a probed, bounded, non-root Deployment,
a Service, and exactly one autoscaler; lag triggers name real topics and consumer groups;
the production overlay only patches what the base has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from trialstream.events.topics import Topic
from trialstream.services import ServiceInfo, discover_services

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
Resource = dict[str, Any]


def documents(folder: Path) -> list[Resource]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs: list[Resource] = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((folder / name).read_text()) if d]
    return docs


def find(docs: list[Resource], kind: str, name: str) -> Resource | None:
    return next((d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name), None)


BASE = documents(K8S / "base")
SERVICES = discover_services()


def test_the_base_lists_every_manifest_file_it_has() -> None:
    listed = set(yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in (K8S / "base").glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize("info", SERVICES, ids=lambda s: s.name)
def test_every_service_runs_probed_bounded_and_unprivileged(info: ServiceInfo) -> None:
    deployment = find(BASE, "Deployment", info.name)
    assert deployment is not None, f"no Deployment for {info.name}"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", info.module]
    assert container["ports"][0]["containerPort"] == info.base_port
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert set(container["resources"]) == {"requests", "limits"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert sources == {"trialstream-config", "trialstream-secrets"}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env[f"{info.env_prefix}PORT"] == str(info.base_port)
    service = find(BASE, "Service", info.name)
    assert service is not None
    assert service["spec"]["ports"][0]["port"] == info.base_port


@pytest.mark.parametrize("info", SERVICES, ids=lambda s: s.name)
def test_every_service_has_exactly_one_autoscaler(info: ServiceInfo) -> None:
    keda = find(BASE, "ScaledObject", info.name)
    hpa = find(BASE, "HorizontalPodAutoscaler", info.name)
    assert (keda is None) != (hpa is None), f"{info.name}: KEDA makes its own HPA; one only"


def consumer_groups() -> dict[str, set[str]]:
    """Each declared consumer group and the topics it reads (ServiceInfo.groups)."""
    return {g.name: {str(t) for t in g.topics} for info in SERVICES for g in info.groups}


def test_lag_triggers_name_real_topics_and_consumer_groups_within_the_partitions() -> None:
    topics, groups = {str(t) for t in Topic}, consumer_groups()
    config = find(BASE, "ConfigMap", "trialstream-config")
    assert config is not None
    partitions = int(config["data"]["TRIALSTREAM_TOPIC_PARTITIONS"])
    scaled = [d for d in BASE if d["kind"] == "ScaledObject"]
    assert {d["metadata"]["name"] for d in scaled} >= {"anomaly"}  # the hot consumer
    for obj in scaled:
        assert obj["spec"]["maxReplicaCount"] <= partitions
        for trigger in (t for t in obj["spec"]["triggers"] if t["type"] == "kafka"):
            assert trigger["metadata"]["topic"] in topics
            assert trigger["metadata"]["consumerGroup"] in groups
            assert trigger["metadata"]["topic"] in groups[trigger["metadata"]["consumerGroup"]]


def test_the_production_overlay_patches_only_what_the_base_has() -> None:
    overlay = K8S / "overlays" / "production"
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["../../base"]
    for patch in kustomization["patches"]:
        doc = yaml.safe_load((overlay / patch["path"]).read_text())
        assert find(BASE, doc["kind"], doc["metadata"]["name"]) is not None, patch["path"]
