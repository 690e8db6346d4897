-- Person search (reid_svc/search.py): one representative embedding per person of every session whose video set
-- opted in, kept after the person retires from its session's gallery so "where else was this person?" reaches
-- back over days. Biometric data: deleted with its session (ResetGallery) and after REID_SEARCH_RETENTION_DAYS.
CREATE TABLE IF NOT EXISTS search_persons (
    session_id     text NOT NULL,
    global_id      bigint NOT NULL,
    video_set      text NOT NULL,
    model          text NOT NULL,
    camera_ids     text[] NOT NULL,
    first_seen_ns  bigint NOT NULL,
    last_seen_ns   bigint NOT NULL,
    embedding      bytea NOT NULL,
    -- The person's best crop (JPEG) and when/where it was seen, so hits stay viewable after the person retires.
    thumbnail      bytea,
    thumbnail_ns   bigint,
    thumbnail_camera text,
    updated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (session_id, global_id)
);
CREATE INDEX IF NOT EXISTS search_persons_set ON search_persons (video_set, model, updated_at);
CREATE INDEX IF NOT EXISTS search_persons_last_seen ON search_persons (last_seen_ns);
