from importlib.resources import files

from trialstream.events.topics import Topic
from trialstream.services import ServiceInfo

SERVICE = ServiceInfo(
    name="identity",
    module="identity",
    schema="identity",
    migrations=files("identity") / "migrations",
    base_port=8007,
    env_prefix="IDENTITY_",
    order=5,  # first: the other services fetch its keys
    produces=(Topic.STAFF_ACCESS, Topic.STUDIES),
)
