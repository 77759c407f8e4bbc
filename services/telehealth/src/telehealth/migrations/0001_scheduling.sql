-- Telehealth scheduling. No extension is needed: the no-double-booking exclusion
-- uses range types only (see docs/decisions/0020-booking-exclusion-without-extensions.md).

-- Site timezone (for staff availability), set through the admin API; UTC until then.
CREATE TABLE sites (
    site_id   text PRIMARY KEY,
    timezone  text NOT NULL DEFAULT 'UTC'
);

-- Participants from enrolment events; baseline_date is Day 1 of the protocol.
CREATE TABLE participants (
    participant_id text PRIMARY KEY,
    site_id        text        NOT NULL,
    timezone       text        NOT NULL DEFAULT 'UTC',
    baseline_date  date        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Staff credentials (SHA-256 of the token). staff_key is the integer the exclusion
-- constraint compares as a one-point range.
CREATE TABLE staff (
    staff_key   integer GENERATED ALWAYS AS IDENTITY UNIQUE,
    staff_id    text PRIMARY KEY,
    site_id     text        NOT NULL,
    token_hash  text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Weekly wall-clock hours in the site's timezone (Monday = 0), and per-date exceptions
-- that replace a day's hours (a row with NULL times = the whole day off).
CREATE TABLE weekly_hours (
    staff_id   text    NOT NULL REFERENCES staff ON DELETE CASCADE,
    weekday    smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    start_time time    NOT NULL,
    end_time   time    NOT NULL CHECK (end_time > start_time)
);
CREATE INDEX weekly_hours_by_staff ON weekly_hours (staff_id);
CREATE TABLE hour_exceptions (
    staff_id   text NOT NULL REFERENCES staff ON DELETE CASCADE,
    on_date    date NOT NULL,
    start_time time,
    end_time   time,
    CHECK ((start_time IS NULL) = (end_time IS NULL)),
    CHECK (end_time > start_time)
);
CREATE INDEX hour_exceptions_by_staff ON hour_exceptions (staff_id, on_date);

-- Protocol visits (and urgent unscheduled ones) with their windows.
CREATE TABLE visits (
    visit_id       uuid PRIMARY KEY,
    participant_id text        NOT NULL REFERENCES participants,
    name           text        NOT NULL,
    visit_type     text        NOT NULL CHECK (visit_type IN ('video', 'home', 'site')),
    sequence       integer     NOT NULL,  -- protocol order; 0 for urgent visits
    window_start   timestamptz NOT NULL,
    window_end     timestamptz NOT NULL CHECK (window_end > window_start),
    status         text        NOT NULL DEFAULT 'open'
                   CHECK (status IN ('open', 'proposed', 'booked', 'completed', 'missed', 'cancelled')),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (participant_id, name)
);
CREATE INDEX visits_closing ON visits (window_end) WHERE status IN ('open', 'booked');

CREATE TABLE bookings (
    booking_id       uuid PRIMARY KEY,
    visit_id         uuid        NOT NULL REFERENCES visits,
    staff_id         text        NOT NULL REFERENCES staff,
    staff_key        integer     NOT NULL,
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL CHECK (ends_at > starts_at),
    status           text        NOT NULL
                     CHECK (status IN ('proposed', 'booked', 'completed', 'no-show', 'cancelled', 'dismissed')),
    room_token       text UNIQUE,
    deviation_reason text,
    reason           text,       -- of the last reschedule / cancellation
    created_by       text        NOT NULL,
    scheduled_at     timestamptz NOT NULL,  -- when the current time was agreed (reminder cut-off)
    revision         integer     NOT NULL DEFAULT 0,  -- +1 per change: the iCalendar SEQUENCE
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- The guarantee: one staff member is never in two live bookings at once. The staff
    -- member is a one-point int4range so plain GiST range operators do the work.
    CONSTRAINT no_double_booking EXCLUDE USING gist (
        int4range(staff_key, staff_key, '[]') WITH &&,
        tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (status IN ('proposed', 'booked', 'completed', 'no-show'))
);
-- A visit has at most one live booking.
CREATE UNIQUE INDEX one_live_booking_per_visit ON bookings (visit_id)
    WHERE status IN ('proposed', 'booked');
CREATE INDEX bookings_reminders ON bookings (starts_at) WHERE status = 'booked';

-- Reminders already emitted: the unique key makes the scheduler say each one once,
-- also across restarts and replicas. starts_at is in the key so a rescheduled
-- booking is reminded again for its new time.
CREATE TABLE reminders_sent (
    booking_id uuid        NOT NULL,
    lead       text        NOT NULL CHECK (lead IN ('24h', '1h')),
    starts_at  timestamptz NOT NULL,
    sent_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (booking_id, lead, starts_at)
);

-- Every high-severity alert seen, and what came of it (dedupe by alert id).
CREATE TABLE urgent_alerts (
    alert_id       uuid PRIMARY KEY,
    participant_id text        NOT NULL,
    outcome        text        NOT NULL CHECK (outcome IN ('proposed', 'unknown_participant', 'no_free_slot')),
    booking_id     uuid,
    received_at    timestamptz NOT NULL
);
CREATE INDEX urgent_alerts_waiting ON urgent_alerts (participant_id) WHERE outcome = 'unknown_participant';

-- Calendar feed secrets (hashed): calendar apps cannot send a bearer header.
CREATE TABLE calendar_feeds (
    token_hash  text PRIMARY KEY,
    owner_kind  text NOT NULL CHECK (owner_kind IN ('staff', 'participant')),
    owner_id    text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
