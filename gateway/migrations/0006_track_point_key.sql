-- The idempotency key of a track point: one row per track, camera and instant of a session. It includes the time
-- column because every unique index of a TimescaleDB hypertable must. Rows an earlier writer stored twice (a
-- retried batch whose commit was not acknowledged) are removed first, keeping one of each.
DELETE FROM track_points WHERE (tableoid, ctid) IN (
    SELECT tableoid, ctid FROM (
        SELECT tableoid, ctid,
               row_number() OVER (PARTITION BY session_id, camera_id, track_id, time) AS copy_number
        FROM track_points
    ) numbered
    WHERE copy_number > 1
);
CREATE UNIQUE INDEX IF NOT EXISTS track_points_key ON track_points (session_id, camera_id, track_id, time);
