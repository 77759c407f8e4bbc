from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ServiceInfo

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
        Topic.DISCREPANCY_FLAGS,
    ),
    consumes=(
        Topic.ALERTS,
        Topic.ALERT_EPISODES_ENDED,
        Topic.PARTICIPANTS,
        Topic.READINGS,
        Topic.EPRO_DUE,
        Topic.EPRO_MISSED,
        Topic.EPRO_RESPONSES,
        Topic.VISITS,
    ),
)
