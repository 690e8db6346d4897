-- Rollback (issue 28): an old version made current again is stored as a new version, a copy marked "rollback"
-- with the version it restores; earlier rows are never changed.
ALTER TABLE calibrations ADD COLUMN IF NOT EXISTS restored_from integer;
ALTER TABLE calibrations DROP CONSTRAINT IF EXISTS calibrations_source_check;
ALTER TABLE calibrations ADD CONSTRAINT calibrations_source_check CHECK (source IN ('yaml', 'api', 'rollback'));
ALTER TABLE calibrations ADD CONSTRAINT calibrations_restored_from_check
    CHECK ((source = 'rollback') = (restored_from IS NOT NULL) AND (restored_from IS NULL OR restored_from < version));
