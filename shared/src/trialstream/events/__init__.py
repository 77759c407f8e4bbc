"""Event contracts, one module per producing domain. Consumers read them tolerantly."""

from trialstream.events.alerts import (
    AlertAcknowledged,
    AlertEpisodeEnded,
    AlertEscalated,
    AlertKind,
    AlertRaised,
    AlertResolved,
    Severity,
)
from trialstream.events.base import Event, ParticipantId
from trialstream.events.deadletter import DeadLetter
from trialstream.events.epro import QuestionnaireDue, QuestionnaireMissed, ResponseSubmitted
from trialstream.events.participants import ParticipantState
from trialstream.events.readings import UNITS, Metric, ReadingReceived
from trialstream.events.topics import Topic
from trialstream.events.visits import (
    UrgentVisitProposed,
    VisitChanged,
    VisitReminderDue,
    VisitStatus,
    VisitType,
)

__all__ = [
    "UNITS",
    "AlertAcknowledged",
    "AlertEpisodeEnded",
    "AlertEscalated",
    "AlertKind",
    "AlertRaised",
    "AlertResolved",
    "DeadLetter",
    "Event",
    "Metric",
    "ParticipantId",
    "ParticipantState",
    "QuestionnaireDue",
    "QuestionnaireMissed",
    "ReadingReceived",
    "ResponseSubmitted",
    "Severity",
    "Topic",
    "UrgentVisitProposed",
    "VisitChanged",
    "VisitReminderDue",
    "VisitStatus",
    "VisitType",
]
