from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ConsumerGroup, ServiceInfo

# The consumer groups it joins (their names are offsets on the broker: keep them).
GROUPS = {
    "consents": ConsumerGroup("ingest-consents", (Topic.CONSENTS,)),
    "erasures": ConsumerGroup("ingest-erasures", (Topic.ERASURES,)),
}

SERVICE = ServiceInfo(
    name="ingest",
    module="ingest",
    schema="ingest",
    migrations=files("ingest") / "migrations",
    base_port=8001,
    env_prefix="INGEST_",
    order=10,
    produces=(Topic.READINGS, Topic.READING_SUMMARIES, Topic.PARTICIPANTS, Topic.ERASURE_STATUS),
    groups=tuple(GROUPS.values()),
)
