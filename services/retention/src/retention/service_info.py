from importlib.resources import files

from trialstream.services import ServiceInfo

SERVICE = ServiceInfo(
    name="retention",
    module="retention",
    schema="retention",
    migrations=files("retention") / "migrations",
    base_port=8006,
    env_prefix="RETENTION_",
    order=40,
)
