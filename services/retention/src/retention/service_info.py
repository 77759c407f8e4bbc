from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ConsumerGroup, ServiceInfo

# The consumer groups it joins (their names are offsets on the broker: keep them).
GROUPS = {
    "epro_due": ConsumerGroup("retention-epro-due", (Topic.EPRO_DUE,)),
    "epro_missed": ConsumerGroup("retention-epro-missed", (Topic.EPRO_MISSED,)),
    "epro_responses": ConsumerGroup("retention-epro-responses", (Topic.EPRO_RESPONSES,)),
    "visits": ConsumerGroup("retention-visits", (Topic.VISITS,)),
    "visit_reminders": ConsumerGroup("retention-visit-reminders", (Topic.VISIT_REMINDERS,)),
    "participants": ConsumerGroup("retention-participants-v2", (Topic.PARTICIPANTS,)),
    # one summary per upload, not every reading (decision 0092)
    "readings": ConsumerGroup("retention-reading-summaries", (Topic.READING_SUMMARIES,)),
    "consents": ConsumerGroup("retention-consents", (Topic.CONSENTS,)),  # decision 0081
    "erasures": ConsumerGroup("retention-erasures", (Topic.ERASURES,)),  # decision 0086
}

SERVICE = ServiceInfo(
    name="retention",
    module="retention",
    schema="retention",
    migrations=files("retention") / "migrations",
    base_port=8006,
    env_prefix="RETENTION_",
    order=40,
    produces=(Topic.NUDGES, Topic.COORDINATOR_TASKS, Topic.ERASURE_STATUS, Topic.RETENTION_RISK),
    groups=tuple(GROUPS.values()),
)
