"""What counts as a transient failure, once for every consumer and background loop.

Transient means "the same work will succeed later without anyone changing it": the
database or broker is restarting, a connection was cut, a request timed out, a lock lost
a deadlock. Those are retried (consumers) or left to the next pass (loops), for as long
as it takes. Anything else is deterministic and retrying cannot help: a consumer
dead-letters the record after a few tries, so one bad record never stalls a partition.

The line is drawn by kind, not by base class, because the base classes mix both:
`OSError` covers a refused connection and also `IsADirectoryError` (what `ZoneInfo("Europe")`
raises where the zone database is a folder: a bad value that kept a consumer retrying
forever); `KafkaError` covers a broker that is away and also a message too large to ever be
accepted; asyncpg's `InterfaceError` (a connection closed mid-query) is not a
`PostgresError` at all.
"""

from __future__ import annotations

import asyncpg
from aiokafka import errors as kafka_errors

# OSErrors about a path, not a connection: the same value fails the same way every time.
_FILE_ERRORS: tuple[type[OSError], ...] = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)

_TRANSIENT_POSTGRES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # could not connect, connection does not exist
    asyncpg.InterfaceError,  # the connection closed under a query
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash recovery, cancel
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)

_TRANSIENT_KAFKA: tuple[type[BaseException], ...] = (
    kafka_errors.KafkaConnectionError,
    kafka_errors.KafkaTimeoutError,  # a send that waited too long for the broker
    kafka_errors.KafkaUnavailableError,
    kafka_errors.NodeNotReadyError,
)


class TransientConflict(Exception):
    """Work that lost an optimistic-concurrency race (another writer changed what it read):
    done again from the new state, it succeeds. Raise a subclass naming the race."""


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same work later can succeed without any change to it."""
    if isinstance(exc, (TransientConflict, *_TRANSIENT_POSTGRES)):
        return True
    if isinstance(exc, kafka_errors.KafkaError):
        return isinstance(exc, _TRANSIENT_KAFKA) or bool(getattr(exc, "retriable", False))
    # Network errors come as ConnectionError, TimeoutError, socket.gaierror, an OSError with
    # an errno, and as a bare OSError ("Multiple exceptions: ..." from a connect to every
    # address of a host): all OSErrors but the ones about files.
    return isinstance(exc, OSError) and not isinstance(exc, _FILE_ERRORS)
