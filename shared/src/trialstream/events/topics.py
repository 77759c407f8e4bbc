"""Topic names: the only place they are spelled. A breaking contract change gets a new version."""

from enum import StrEnum


class Topic(StrEnum):
    READINGS = "trialstream.readings.v1"
    # ingest: per participant per upload, that data came (ReadingsSummarised, decision 0092)
    READING_SUMMARIES = "trialstream.reading-summaries.v1"
    ALERTS = "trialstream.alerts.v1"
    ALERT_ACKNOWLEDGEMENTS = "trialstream.alert-acknowledgements.v1"
    ALERT_EPISODES_ENDED = "trialstream.alert-episodes-ended.v1"  # AlertEpisodeEnded
    ALERT_RESOLUTIONS = "trialstream.alert-resolutions.v1"  # AlertResolved
    ALERT_ESCALATIONS = "trialstream.alert-escalations.v1"  # AlertEscalated
    PARTICIPANTS = "trialstream.participants.v1"
    DEAD_LETTER = "trialstream.dead-letter.v1"
    # ePRO (QuestionnaireDue, QuestionnaireMissed, ResponseSubmitted)
    EPRO_DUE = "trialstream.epro-due.v1"
    EPRO_MISSED = "trialstream.epro-missed.v1"
    EPRO_RESPONSES = "trialstream.epro-responses.v1"
    # telehealth (VisitChanged, VisitReminderDue, UrgentVisitProposed)
    VISITS = "trialstream.visits.v1"
    VISIT_REMINDERS = "trialstream.visit-reminders.v1"
    VISIT_PROPOSALS = "trialstream.visit-proposals.v1"
    # retention (NudgeSent, CoordinatorTaskCreated)
    NUDGES = "trialstream.nudges.v1"
    COORDINATOR_TASKS = "trialstream.coordinator-tasks.v1"
    # monitoring, risk-based monitoring (KriBreached, KriRecovered; DiscrepancyFlagRaised)
    KRI_BREACHES = "trialstream.kri-breaches.v1"
    DISCREPANCY_FLAGS = "trialstream.discrepancy-flags.v1"
    # monitoring: each (study, site)'s KRIs and open work after an evaluation (SiteKriSnapshot),
    # keyed '<study>|<site>'
    KRI_SNAPSHOTS = "trialstream.kri-snapshots.v1"
    # retention: each (study, site)'s dropout risk (RetentionRiskSummary), keyed '<study>|<site>'
    RETENTION_RISK = "trialstream.retention-risk.v1"
    # every service: the head of its audit chain (AuditHeadPublished), keyed by service
    AUDIT_HEADS = "trialstream.audit-heads.v1"
    # identity: ended staff sessions and revoked access (StaffSessionEnded, StaffAccessRevoked)
    STAFF_ACCESS = "trialstream.staff-access.v1"
    # identity: each study's current definition (StudyDefined)
    STUDIES = "trialstream.studies.v1"
    # consent: each participant's consent, by scope (ConsentState)
    CONSENTS = "trialstream.consents.v1"
    # consent: erasure requests, keyed by participant (ErasureRequested, decision 0086)
    ERASURES = "trialstream.erasures.v1"
    # every service holding personal data: its erasure finished, keyed by
    # '<participant>|<service>' (ErasureDone)
    ERASURE_STATUS = "trialstream.erasure-status.v1"


# Topics whose latest value per key is the state (participant -> site, service -> audit
# chain head, session or person -> ended or revoked, study -> definition, study and site
# -> KRIs or dropout risk): compacted.
COMPACTED: frozenset[Topic] = frozenset(
    {
        Topic.PARTICIPANTS,
        Topic.AUDIT_HEADS,
        Topic.STAFF_ACCESS,
        Topic.CONSENTS,
        Topic.ERASURES,
        Topic.ERASURE_STATUS,
        Topic.KRI_SNAPSHOTS,
        Topic.RETENTION_RISK,
    }
)
