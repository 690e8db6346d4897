-- Per session and 10-minute bucket (UTC, date_bin from 2000-01-01): the earliest enter and the latest exit of the
-- visits that overlap the bucket. A visit is an enter followed, for the same (zone, person as written), by an exit.
-- Dwell over [start, end) reads only the events between the first enter of start's bucket and the last exit of
-- end's bucket (analytics_svc), so its cost follows the range and the visits open at its ends, not the session's
-- age. A visit of D minutes touches D / 10 + 1 rows, once.
-- Kept by a trigger on every zone event written, whoever writes it (history writer, spool replay, benchmarks), in
-- any order: a late event only ever widens the bounds. Deleting the session deletes them (a trigger, not a foreign
-- key: a batch racing a purge must not fail on it).
CREATE TABLE IF NOT EXISTS zone_visit_bounds (
    session_id  text NOT NULL,
    bucket      timestamptz NOT NULL,
    first_enter timestamptz NOT NULL,
    last_exit   timestamptz NOT NULL,
    PRIMARY KEY (session_id, bucket)
);

-- A new exit closes the visit of the (zone, person)'s previous event when that is an enter; a new enter opens one
-- closed by its next event when that is an exit (an event written late, between others). Ties order as dwell
-- pairs them: by time, then kind ('enter' before 'exit').
CREATE OR REPLACE FUNCTION zone_visit_bounds_on_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    other record;
    enter_time timestamptz;
    exit_time timestamptz;
BEGIN
    IF NEW.kind = 'exit' THEN
        SELECT e.time, e.kind INTO other FROM zone_events e
        WHERE e.session_id = NEW.session_id AND e.zone_id = NEW.zone_id AND e.global_id = NEW.global_id
          AND e.kind IN ('enter', 'exit') AND e.time <= NEW.time AND (e.time, e.kind) < (NEW.time, NEW.kind)
        ORDER BY e.time DESC, e.kind DESC LIMIT 1;
        IF NOT FOUND OR other.kind <> 'enter' THEN
            RETURN NULL;
        END IF;
        enter_time := other.time;
        exit_time := NEW.time;
    ELSE
        SELECT e.time, e.kind INTO other FROM zone_events e
        WHERE e.session_id = NEW.session_id AND e.zone_id = NEW.zone_id AND e.global_id = NEW.global_id
          AND e.kind IN ('enter', 'exit') AND e.time >= NEW.time AND (e.time, e.kind) > (NEW.time, NEW.kind)
        ORDER BY e.time, e.kind LIMIT 1;
        IF NOT FOUND OR other.kind <> 'exit' THEN
            RETURN NULL;
        END IF;
        enter_time := NEW.time;
        exit_time := other.time;
    END IF;
    -- Widen the bounds of every bucket the visit [enter_time, exit_time] overlaps.
    INSERT INTO zone_visit_bounds AS b (session_id, bucket, first_enter, last_exit)
    SELECT NEW.session_id, h, enter_time, exit_time
    FROM generate_series(date_bin('10 minutes', enter_time, timestamptz '2000-01-01 00:00+00'), exit_time,
                         interval '10 minutes') AS h
    ON CONFLICT (session_id, bucket) DO UPDATE
        SET first_enter = least(b.first_enter, EXCLUDED.first_enter),
            last_exit = greatest(b.last_exit, EXCLUDED.last_exit)
        WHERE EXCLUDED.first_enter < b.first_enter OR EXCLUDED.last_exit > b.last_exit;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS zone_events_visit_bounds ON zone_events;
CREATE TRIGGER zone_events_visit_bounds AFTER INSERT ON zone_events
    FOR EACH ROW WHEN (NEW.kind IN ('enter', 'exit')) EXECUTE FUNCTION zone_visit_bounds_on_event();

CREATE OR REPLACE FUNCTION zone_visit_bounds_on_session_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM zone_visit_bounds WHERE session_id = OLD.session_id;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS sessions_zone_visit_bounds ON sessions;
CREATE TRIGGER sessions_zone_visit_bounds AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION zone_visit_bounds_on_session_delete();

-- All of one session's bounds (NULL: every session) from its events in one pass: for histories loaded with the
-- trigger off (session_replication_role = replica; bench/analytics_bench.py) and for the events stored before this
-- migration.
CREATE OR REPLACE FUNCTION zone_visit_bounds_rebuild(sid text DEFAULT NULL) RETURNS void LANGUAGE sql AS $$
    INSERT INTO zone_visit_bounds AS b (session_id, bucket, first_enter, last_exit)
    SELECT v.session_id, h, min(v.time), max(v.next_time)
    FROM (
        SELECT session_id, time, kind, lead(kind) OVER w AS next_kind, lead(time) OVER w AS next_time
        FROM zone_events
        WHERE (sid IS NULL OR session_id = sid) AND kind IN ('enter', 'exit')
        WINDOW w AS (PARTITION BY session_id, zone_id, global_id ORDER BY time, kind)
    ) v
    CROSS JOIN LATERAL generate_series(date_bin('10 minutes', v.time, timestamptz '2000-01-01 00:00+00'), v.next_time,
                                       interval '10 minutes') AS h
    WHERE v.kind = 'enter' AND v.next_kind = 'exit'
    GROUP BY 1, 2
    ON CONFLICT (session_id, bucket) DO UPDATE
        SET first_enter = least(b.first_enter, EXCLUDED.first_enter),
            last_exit = greatest(b.last_exit, EXCLUDED.last_exit);
$$;

SELECT zone_visit_bounds_rebuild();
