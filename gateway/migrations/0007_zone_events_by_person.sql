-- Per (zone, person) order of zone events: dwell finds each person's last event before a range, and the distinct
-- people of a zone, by index probes instead of reading the session's whole event history (analytics_svc).
CREATE INDEX IF NOT EXISTS zone_events_session_zone_person ON zone_events (session_id, zone_id, global_id, time, kind);
