-- Video sets created or changed over REST (YAML files in VIDEO_SETS_DIR stay authoritative for their names),
-- and a heartbeat per session so a restarted gateway can resume the always-on sessions nobody runs any more.
CREATE TABLE IF NOT EXISTS video_sets (
    name        text PRIMARY KEY,
    doc         jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE sessions ADD COLUMN IF NOT EXISTS heartbeat timestamptz;
