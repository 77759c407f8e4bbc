"""One definition of a transient failure: retried for as long as it takes, never
dead-lettered; everything else is deterministic and dead-lettered after a few tries."""

from __future__ import annotations

import errno
import socket
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiokafka import errors as kafka_errors
from trialstream.transient import is_transient


def _bad_zone_error() -> BaseException:
    try:
        ZoneInfo("Europe")  # a folder of the zone database, not a zone
    except Exception as exc:
        return exc
    raise AssertionError("ZoneInfo('Europe') was accepted")


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        ConnectionResetError(),
        TimeoutError(),
        OSError(errno.EHOSTUNREACH, "no route to host"),
        OSError("Multiple exceptions: [Errno 111] Connect call failed"),
        socket.gaierror(socket.EAI_AGAIN, "temporary failure in name resolution"),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed mid-operation"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
        kafka_errors.KafkaConnectionError(),
        kafka_errors.KafkaTimeoutError(),
        kafka_errors.NotLeaderForPartitionError(),
    ],
    ids=repr,
)
def test_infrastructure_that_is_away_is_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        _bad_zone_error(),
        FileNotFoundError(errno.ENOENT, "no such file"),
        KeyError("site_id"),
        ValueError("not a number"),
        RuntimeError("bug"),
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.DataError("invalid input syntax"),
        kafka_errors.MessageSizeTooLargeError(),
        kafka_errors.TopicAuthorizationFailedError(),
    ],
    ids=repr,
)
def test_a_bad_value_or_a_bug_is_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)
