from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ConsumerGroup, ServiceInfo

# The consumer groups it joins (their names are offsets on the broker: keep them).
GROUPS = {
    "participants": ConsumerGroup("consent-participants", (Topic.PARTICIPANTS,)),
    "erasures": ConsumerGroup("consent-erasures", (Topic.ERASURES,)),
    "erasure-status": ConsumerGroup("consent-erasure-status", (Topic.ERASURE_STATUS,)),
}

SERVICE = ServiceInfo(
    name="consent",
    module="consent",
    schema="consent",
    migrations=files("consent") / "migrations",
    base_port=8009,
    env_prefix="CONSENT_",
    order=20,  # before the services it gates, after ingest (whose enrolments it reads)
    produces=(Topic.CONSENTS, Topic.ERASURES, Topic.ERASURE_STATUS),
    groups=tuple(GROUPS.values()),
)
