from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ServiceInfo

SERVICE = ServiceInfo(
    name="epro",
    module="epro",
    schema="epro",
    migrations=files("epro") / "migrations",
    base_port=8004,
    env_prefix="EPRO_",
    order=40,
    produces=(Topic.EPRO_DUE, Topic.EPRO_MISSED, Topic.EPRO_RESPONSES, Topic.ALERTS),
    consumes=(Topic.PARTICIPANTS, Topic.VISITS),
)
