"""How the CLI finds services without importing them by name: entry points.

Each service package declares `[project.entry-points."trialstream.services"]`
pointing at a ServiceInfo; `trialstream up` and `migrate` iterate over them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from importlib.resources.abc import Traversable

from trialstream.events.topics import Topic


@dataclass(frozen=True)
class ConsumerGroup:
    """A consumer group a service joins and the topics it reads in it. The name is a
    contract with the broker (its committed offsets): a new name replays the topics."""

    name: str
    topics: tuple[Topic, ...]


# Topics every service process reads from the start without a consumer group (each process
# needs all of it, trialstream.following): ended staff sessions and revoked access
# (trialstream.staff), study definitions (trialstream.studies).
FOLLOWED_BY_EVERY_SERVICE: tuple[Topic, ...] = (Topic.STAFF_ACCESS, Topic.STUDIES)


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    module: str  # run as `python -m <module>`
    schema: str  # its own PostgreSQL schema
    migrations: Traversable
    base_port: int  # replica i listens on base_port + 10 * i
    env_prefix: str  # e.g. "INGEST_" for its settings
    order: int = 50  # start order (lower first)
    # What it publishes, and the groups it consumes in: the event catalogue
    # (`trialstream catalog`). `running` refuses to start a service whose subscribers
    # differ from its declared groups.
    produces: tuple[Topic, ...] = ()
    groups: tuple[ConsumerGroup, ...] = ()

    @property
    def consumes(self) -> tuple[Topic, ...]:
        """Its groups' topics, and the ones every service follows."""
        grouped = (t for g in self.groups for t in g.topics)
        return tuple(dict.fromkeys((*grouped, *FOLLOWED_BY_EVERY_SERVICE)))

    def port_of(self, replica: int) -> int:
        return self.base_port + 10 * replica


def discover_services(only: Iterable[str] | None = None) -> list[ServiceInfo]:
    wanted = None if only is None else set(only)
    found = [
        ep.load()
        for ep in entry_points(group="trialstream.services")
        if wanted is None or ep.name in wanted
    ]
    for info in found:
        if not isinstance(info, ServiceInfo):
            raise TypeError(f"entry point for {info!r} is not a ServiceInfo")
    return sorted(found, key=lambda s: (s.order, s.name))
