-- Zone presence per minute, and per-minute step facts for summaries (see spoton/rollups.py).
CREATE TABLE IF NOT EXISTS presence_zone_1m (
    session_id text NOT NULL,
    minute     timestamptz NOT NULL,
    zone_id    text NOT NULL,
    global_id  bigint NOT NULL,
    samples    integer NOT NULL,
    PRIMARY KEY (session_id, minute, zone_id, global_id)
);
ALTER TABLE steps_1m ADD COLUMN IF NOT EXISTS points bigint NOT NULL DEFAULT 0;
ALTER TABLE steps_1m ADD COLUMN IF NOT EXISTS peak integer NOT NULL DEFAULT 0;
ALTER TABLE steps_1m ADD COLUMN IF NOT EXISTS first_time timestamptz;
ALTER TABLE steps_1m ADD COLUMN IF NOT EXISTS last_time timestamptz;
