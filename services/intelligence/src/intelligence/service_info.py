from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ConsumerGroup, ServiceInfo

# The consumer groups it joins (their names are offsets on the broker: keep them).
GROUPS = {
    # enrolments: the forecasts' counts and the conversion of referred candidates
    "participants": ConsumerGroup("intelligence-participants", (Topic.PARTICIPANTS,)),
}

SERVICE = ServiceInfo(
    name="intelligence",
    module="intelligence",
    schema="intelligence",
    migrations=files("intelligence") / "migrations",
    base_port=8008,
    env_prefix="INTELLIGENCE_",
    order=45,
    produces=(),
    groups=tuple(GROUPS.values()),
)
