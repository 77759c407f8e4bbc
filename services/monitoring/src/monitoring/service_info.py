from importlib.resources import files

from trialstream.services import ServiceInfo

SERVICE = ServiceInfo(
    name="monitoring",
    module="monitoring",
    schema="monitoring",
    migrations=files("monitoring") / "migrations",
    base_port=8002,
    env_prefix="MONITORING_",
    order=30,
)
