from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ConsumerGroup, ServiceInfo

# The consumer groups it joins (their names are offsets on the broker: keep them).
GROUPS = {
    # enrolments: the forecasts' counts and the conversion of referred candidates
    "participants": ConsumerGroup("intelligence-participants", (Topic.PARTICIPANTS,)),
    # the portfolio's early-warning lights (decision 0090)
    "kri_snapshots": ConsumerGroup("intelligence-kri-snapshots", (Topic.KRI_SNAPSHOTS,)),
    "retention_risk": ConsumerGroup("intelligence-retention-risk", (Topic.RETENTION_RISK,)),
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
