-- reid_svc's own tables (DESIGN section 6): a session's identity gallery, so another replica can resume it, and the
-- operators' corrections. Embeddings are biometric data: they live here only and go with their session.
CREATE TABLE IF NOT EXISTS galleries (
    session_id   text PRIMARY KEY,
    options      jsonb NOT NULL,
    state        jsonb NOT NULL,
    embeddings   bytea NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS identity_corrections (
    id           bigserial PRIMARY KEY,
    session_id   text NOT NULL,
    kind         text NOT NULL,
    detail       jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS identity_corrections_session ON identity_corrections (session_id, id);
