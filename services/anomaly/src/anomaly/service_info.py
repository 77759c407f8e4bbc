from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ConsumerGroup, ServiceInfo

# The consumer groups it joins (their names are offsets on the broker: keep them).
GROUPS = {
    "readings": ConsumerGroup("anomaly", (Topic.READINGS,)),
    "erasures": ConsumerGroup("anomaly-erasures", (Topic.ERASURES,)),  # decision 0086
}

SERVICE = ServiceInfo(
    name="anomaly",
    module="anomaly",
    schema="anomaly",
    migrations=files("anomaly") / "migrations",
    base_port=8003,
    env_prefix="ANOMALY_",
    order=20,
    produces=(Topic.ALERTS, Topic.ALERT_EPISODES_ENDED, Topic.ERASURE_STATUS),
    groups=tuple(GROUPS.values()),
)
