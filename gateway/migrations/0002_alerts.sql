-- Alerts raised by the video set's rules, kept with the history.
CREATE TABLE IF NOT EXISTS alerts (
    time       timestamptz NOT NULL,
    session_id text NOT NULL,
    rule_id    text NOT NULL,
    kind       text NOT NULL,
    target     text NOT NULL,
    global_id  bigint,
    value      double precision NOT NULL,
    message    text NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_session_time ON alerts (session_id, time);
