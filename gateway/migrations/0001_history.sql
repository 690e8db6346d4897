-- History owned by the gateway (DESIGN section 6). Times are media time (UTC).
CREATE TABLE IF NOT EXISTS sessions (
    session_id   text PRIMARY KEY,
    video_set    text NOT NULL,
    cameras      text[] NOT NULL,
    options      jsonb NOT NULL DEFAULT '{}',
    video_set_doc jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    media_start  timestamptz NOT NULL,
    ended_at     timestamptz,
    steps        bigint NOT NULL DEFAULT 0,
    last_error   text
);

CREATE TABLE IF NOT EXISTS track_points (
    time        timestamptz NOT NULL,
    session_id  text NOT NULL,
    step        bigint NOT NULL,
    camera_id   text NOT NULL,
    frame_index bigint NOT NULL,
    track_id    bigint NOT NULL,
    global_id   bigint,
    bbox        real[] NOT NULL,
    confidence  real NOT NULL,
    floor_x_m   double precision,
    floor_y_m   double precision
);
CREATE INDEX IF NOT EXISTS track_points_session_time ON track_points (session_id, time);
CREATE INDEX IF NOT EXISTS track_points_session_global ON track_points (session_id, global_id, time);

CREATE TABLE IF NOT EXISTS persons (
    session_id text NOT NULL,
    global_id  bigint NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    cameras    text[] NOT NULL,
    PRIMARY KEY (session_id, global_id)
);

CREATE TABLE IF NOT EXISTS zone_events (
    time       timestamptz NOT NULL,
    session_id text NOT NULL,
    zone_id    text NOT NULL,
    global_id  bigint NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('enter', 'exit', 'cross_forward', 'cross_backward'))
);
CREATE INDEX IF NOT EXISTS zone_events_session_time ON zone_events (session_id, time);
