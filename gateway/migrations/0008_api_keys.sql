-- API keys created by the gateway (first start, POST /api/v1/auth/keys, spoton keys create). Only the SHA-256 of a
-- key is stored; key_id names it for listing and revoking. Revoked keys stay listed with revoked_at set.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id     text PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    role       text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    key_hash   text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
