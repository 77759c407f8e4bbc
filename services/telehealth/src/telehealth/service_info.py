from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ServiceInfo

SERVICE = ServiceInfo(
    name="telehealth",
    module="telehealth",
    schema="telehealth",
    migrations=files("telehealth") / "migrations",
    base_port=8005,
    env_prefix="TELEHEALTH_",
    order=40,
    produces=(Topic.VISITS, Topic.VISIT_REMINDERS, Topic.VISIT_PROPOSALS),
    consumes=(Topic.ALERTS, Topic.PARTICIPANTS),
)
