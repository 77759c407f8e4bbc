from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ServiceInfo

SERVICE = ServiceInfo(
    name="retention",
    module="retention",
    schema="retention",
    migrations=files("retention") / "migrations",
    base_port=8006,
    env_prefix="RETENTION_",
    order=40,
    produces=(Topic.NUDGES, Topic.COORDINATOR_TASKS),
    consumes=(
        Topic.EPRO_DUE,
        Topic.EPRO_MISSED,
        Topic.EPRO_RESPONSES,
        Topic.VISITS,
        Topic.VISIT_REMINDERS,
        Topic.READINGS,
        Topic.PARTICIPANTS,
    ),
)
