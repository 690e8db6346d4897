-- Per (zone, person) order of zone events: dwell finds each person's last event before a range, and the distinct
-- people of a zone, by index probes instead of reading the session's whole event history (analytics_svc).
CREATE INDEX IF NOT EXISTS zone_events_session_zone_person ON zone_events (session_id, zone_id, global_id, time, kind);

-- Hourly heatmap cells: presence_cells_1m summed per hour (aligned to the session's media start), kept in step with
-- it by the history writer (spoton/rollups.py), so a day's heatmap reads ~24 x cells rows instead of 1440 x cells.
-- Deleting the session deletes them.
CREATE TABLE IF NOT EXISTS presence_cells_1h (
    session_id text NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    hour       timestamptz NOT NULL,
    cx         integer NOT NULL,
    cy         integer NOT NULL,
    samples    integer NOT NULL,
    PRIMARY KEY (session_id, hour, cx, cy)
);
INSERT INTO presence_cells_1h (session_id, hour, cx, cy, samples)
SELECT c.session_id, date_bin('1 hour', c.minute, s.media_start), c.cx, c.cy, sum(c.samples)
FROM presence_cells_1m c JOIN sessions s USING (session_id)
GROUP BY 1, 2, 3, 4
ON CONFLICT DO NOTHING;
