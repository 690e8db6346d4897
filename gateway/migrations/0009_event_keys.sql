-- Idempotency keys of zone events and alerts, so a replayed spool or a batch whose commit was not acknowledged
-- never doubles a row. Both include the time column (every unique index of a TimescaleDB hypertable must). An
-- alert without a person (global_id NULL) conflicts with another such alert (NULLS NOT DISTINCT, PostgreSQL 15).
-- Rows an earlier writer stored twice are removed first, keeping one of each.
DELETE FROM zone_events WHERE (tableoid, ctid) IN (
    SELECT tableoid, ctid FROM (
        SELECT tableoid, ctid,
               row_number() OVER (PARTITION BY session_id, zone_id, global_id, kind, time) AS copy_number
        FROM zone_events
    ) numbered
    WHERE copy_number > 1
);
CREATE UNIQUE INDEX IF NOT EXISTS zone_events_key ON zone_events (session_id, zone_id, global_id, kind, time);
DELETE FROM alerts WHERE (tableoid, ctid) IN (
    SELECT tableoid, ctid FROM (
        SELECT tableoid, ctid,
               row_number() OVER (PARTITION BY session_id, rule_id, kind, target, global_id, time) AS copy_number
        FROM alerts
    ) numbered
    WHERE copy_number > 1
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_key ON alerts (session_id, rule_id, kind, target, global_id, time)
    NULLS NOT DISTINCT;
