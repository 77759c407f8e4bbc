from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ServiceInfo

SERVICE = ServiceInfo(
    name="ingest",
    module="ingest",
    schema="ingest",
    migrations=files("ingest") / "migrations",
    base_port=8001,
    env_prefix="INGEST_",
    order=10,
    produces=(Topic.READINGS, Topic.PARTICIPANTS),
)
