"""A service joins exactly the consumer groups its ServiceInfo declares."""

from __future__ import annotations

from importlib.resources import files

import pytest
from faststream.kafka import KafkaBroker
from trialstream.events.participants import ParticipantState
from trialstream.events.topics import Topic
from trialstream.runtime import Runtime, check_groups
from trialstream.services import ConsumerGroup, ServiceInfo
from trialstream.settings import ServiceSettings

INFO = ServiceInfo(
    name="demo",
    module="demo",
    schema="demo",
    migrations=files("trialstream") / "migrations",
    base_port=9000,
    env_prefix="DEMO_",
    groups=(ConsumerGroup("demo-participants", (Topic.PARTICIPANTS,)),),
)


async def _nothing(_: object) -> None:
    return None


def runtime() -> Runtime:
    return Runtime(ServiceSettings(), KafkaBroker())


def test_declared_groups_pass_and_name_what_the_catalogue_shows() -> None:
    rt = runtime()
    rt.subscribe(Topic.PARTICIPANTS, ParticipantState, "demo-participants", _nothing)
    check_groups(INFO, rt.subscriptions)
    assert INFO.consumes == (Topic.PARTICIPANTS, Topic.STAFF_ACCESS, Topic.STUDIES)


def test_an_undeclared_group_or_topic_refuses_to_start() -> None:
    rt = runtime()
    rt.subscribe(Topic.PARTICIPANTS, ParticipantState, "demo-participants-v2", _nothing)
    with pytest.raises(RuntimeError, match="demo-participants-v2"):
        check_groups(INFO, rt.subscriptions)
    rt = runtime()
    rt.subscribe(
        [Topic.PARTICIPANTS, Topic.VISITS], ParticipantState, "demo-participants", _nothing
    )
    with pytest.raises(RuntimeError, match="differ"):
        check_groups(INFO, rt.subscriptions)


def test_a_declared_group_nobody_subscribes_refuses_to_start() -> None:
    with pytest.raises(RuntimeError, match="demo-participants"):
        check_groups(INFO, {})


def test_one_group_is_subscribed_once() -> None:
    rt = runtime()
    rt.subscribe(Topic.PARTICIPANTS, ParticipantState, "demo-participants", _nothing)
    with pytest.raises(ValueError, match="twice"):
        rt.subscribe(Topic.PARTICIPANTS, ParticipantState, "demo-participants", _nothing)
