from importlib.resources import files

from trialstream.services import ServiceInfo

SERVICE = ServiceInfo(
    name="epro",
    module="epro",
    schema="epro",
    migrations=files("epro") / "migrations",
    base_port=8004,
    env_prefix="EPRO_",
    order=40,
)
