-- A person's trajectory reads (session, person, time) and the floor point: with the floor point in the index's
-- leaves that is an index-only scan, one index page per ~100 points instead of one table page per point (a
-- person's points lie scattered among everyone else's). It replaces the index of 0001 with the same key.
CREATE INDEX IF NOT EXISTS track_points_session_global_floor ON track_points (session_id, global_id, time)
    INCLUDE (floor_x_m, floor_y_m);
DROP INDEX IF EXISTS track_points_session_global;
