from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ConsumerGroup, ServiceInfo

# The consumer groups it joins (their names are offsets on the broker: keep them).
GROUPS = {
    "alerts": ConsumerGroup("monitoring-alerts", (Topic.ALERTS,)),
    "episodes_ended": ConsumerGroup("monitoring-episodes-ended", (Topic.ALERT_EPISODES_ENDED,)),
    "participants": ConsumerGroup("monitoring-participants", (Topic.PARTICIPANTS,)),
    # decision 0093: the summaries, not each reading (the old group monitoring-readings can go)
    "reading_summaries": ConsumerGroup("monitoring-reading-summaries", (Topic.READING_SUMMARIES,)),
    "epro_responses": ConsumerGroup("monitoring-epro-responses", (Topic.EPRO_RESPONSES,)),
    "epro_missed": ConsumerGroup("monitoring-epro-missed", (Topic.EPRO_MISSED,)),
    "visits": ConsumerGroup("monitoring-visits", (Topic.VISITS,)),
    "rbm_streams": ConsumerGroup(
        "monitoring-rbm-streams",
        (
            Topic.PARTICIPANTS,
            Topic.EPRO_DUE,
            Topic.EPRO_MISSED,
            Topic.EPRO_RESPONSES,
            Topic.VISITS,
        ),
    ),
    "erasures": ConsumerGroup("monitoring-erasures", (Topic.ERASURES,)),  # decision 0086
}

SERVICE = ServiceInfo(
    name="monitoring",
    module="monitoring",
    schema="monitoring",
    migrations=files("monitoring") / "migrations",
    base_port=8002,
    env_prefix="MONITORING_",
    order=30,
    produces=(
        Topic.ALERT_ACKNOWLEDGEMENTS,
        Topic.ALERT_RESOLUTIONS,
        Topic.ALERT_ESCALATIONS,
        Topic.KRI_BREACHES,
        Topic.KRI_SNAPSHOTS,
        Topic.DISCREPANCY_FLAGS,
        Topic.ERASURE_STATUS,
    ),
    groups=tuple(GROUPS.values()),
)
