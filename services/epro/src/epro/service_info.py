from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ConsumerGroup, ServiceInfo

# The consumer groups it joins (their names are offsets on the broker: keep them).
GROUPS = {
    "participants": ConsumerGroup("epro-participants-v2", (Topic.PARTICIPANTS,)),
    "visits": ConsumerGroup("epro-visits", (Topic.VISITS,)),
    "consents": ConsumerGroup("epro-consents", (Topic.CONSENTS,)),  # decision 0080
    "erasures": ConsumerGroup("epro-erasures", (Topic.ERASURES,)),  # decision 0086
}

SERVICE = ServiceInfo(
    name="epro",
    module="epro",
    schema="epro",
    migrations=files("epro") / "migrations",
    base_port=8004,
    env_prefix="EPRO_",
    order=40,
    produces=(
        Topic.EPRO_DUE,
        Topic.EPRO_MISSED,
        Topic.EPRO_RESPONSES,
        Topic.ALERTS,
        Topic.ERASURE_STATUS,
    ),
    groups=tuple(GROUPS.values()),
)
