-- Per-minute rollups of track_points (plain PostgreSQL's stand-in for TimescaleDB's continuous aggregates).
-- Minutes are aligned to each session's media start. Maintained by the history writer (spoton/rollups.py).
CREATE TABLE IF NOT EXISTS presence_1m (
    session_id text NOT NULL,
    minute     timestamptz NOT NULL,
    global_id  bigint NOT NULL,
    samples    integer NOT NULL,  -- steps in this minute at which the person was seen
    PRIMARY KEY (session_id, minute, global_id)
);
CREATE TABLE IF NOT EXISTS steps_1m (
    session_id text NOT NULL,
    minute     timestamptz NOT NULL,
    steps      integer NOT NULL,
    PRIMARY KEY (session_id, minute)
);
CREATE TABLE IF NOT EXISTS presence_cells_1m (
    session_id text NOT NULL,
    minute     timestamptz NOT NULL,
    cx         integer NOT NULL,  -- 0.5 m cells from the floor origin
    cy         integer NOT NULL,
    samples    integer NOT NULL,  -- person-steps in the cell (cameras averaged per person and step)
    PRIMARY KEY (session_id, minute, cx, cy)
);
