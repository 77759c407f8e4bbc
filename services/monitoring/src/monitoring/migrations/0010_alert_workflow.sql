-- Alert workflow: open -> acknowledged -> resolved (resolution reason required), resolve
-- straight from open allowed; escalation when nobody acknowledged in time; episodes.
ALTER TABLE alerts DROP CONSTRAINT alerts_status_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_status_check
    CHECK (status IN ('open', 'acknowledged', 'resolved'));
ALTER TABLE alerts ADD COLUMN resolved_by text;
ALTER TABLE alerts ADD COLUMN resolved_at timestamptz;
ALTER TABLE alerts ADD COLUMN resolution_reason text;
ALTER TABLE alerts ADD CONSTRAINT alerts_resolved_has_reason
    CHECK (status <> 'resolved' OR (resolution_reason IS NOT NULL AND resolved_at IS NOT NULL));
-- Set once, by the escalation checker, in the transaction that writes AlertEscalated to the
-- outbox: the "IS NULL" guard under a row lock is what makes the event exactly-once.
ALTER TABLE alerts ADD COLUMN escalated_at timestamptz;
-- The participant episode an alert belongs to: the first alert's id. Alerts of the same
-- participant and rule join it until the episode ends or all its alerts are resolved.
ALTER TABLE alerts ADD COLUMN episode_id uuid;
UPDATE alerts SET episode_id = alert_id WHERE episode_id IS NULL;
ALTER TABLE alerts ALTER COLUMN episode_id SET NOT NULL;
CREATE INDEX alerts_episode ON alerts (episode_id);
CREATE INDEX alerts_running_episode ON alerts (participant_id, rule, detected_at DESC)
    WHERE episode_ended_at IS NULL AND status <> 'resolved';
CREATE INDEX alerts_awaiting_ack ON alerts (received_at)
    WHERE status = 'open' AND escalated_at IS NULL;

-- Admins: every site, can act, can create staff.
ALTER TABLE staff DROP CONSTRAINT staff_role_check;
ALTER TABLE staff ADD CONSTRAINT staff_role_check
    CHECK (role IN ('site_staff', 'monitor', 'admin'));
