from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ConsumerGroup, ServiceInfo

# The consumer groups it joins (their names are offsets on the broker: keep them).
GROUPS = {
    "alerts": ConsumerGroup("telehealth-alerts", (Topic.ALERTS,)),
    "participants": ConsumerGroup("telehealth-participants-v2", (Topic.PARTICIPANTS,)),
    "consents": ConsumerGroup("telehealth-consents", (Topic.CONSENTS,)),  # decision 0080
    "erasures": ConsumerGroup("telehealth-erasures", (Topic.ERASURES,)),  # decision 0086
}

SERVICE = ServiceInfo(
    name="telehealth",
    module="telehealth",
    schema="telehealth",
    migrations=files("telehealth") / "migrations",
    base_port=8005,
    env_prefix="TELEHEALTH_",
    order=40,
    produces=(Topic.VISITS, Topic.VISIT_REMINDERS, Topic.VISIT_PROPOSALS, Topic.ERASURE_STATUS),
    groups=tuple(GROUPS.values()),
)
