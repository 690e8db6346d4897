-- A session in window mode (REID_IDENTITY_MODE=window) stores its tracklet window beside its gallery, so another
-- replica resumes the open decisions (reid_svc/tracklets.py TrackletWindow.to_bytes: npz, no pickle).
ALTER TABLE galleries ADD COLUMN IF NOT EXISTS window_state bytea;
