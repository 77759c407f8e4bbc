-- Delivery tables every service gets in its own schema.

-- Transactional outbox: written in the same transaction as the state change,
-- relayed to Kafka by OutboxRelay with FOR UPDATE SKIP LOCKED.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    topic       text        NOT NULL,
    key         text,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Inbox: event ids a consumer has already applied; the dedupe key for at-least-once input.
CREATE TABLE inbox (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
