-- Bounded delivery tables (docs/decisions/0075): the outbox relay deletes sent rows and old
-- inbox rows periodically; these indexes find them without reading the whole table.
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX inbox_processed_at ON inbox (processed_at);
