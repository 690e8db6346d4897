-- Calibrations owned by mapping_svc (DESIGN section 6): every version kept, the latest per (video set, camera) wins.
CREATE TABLE IF NOT EXISTS calibrations (
    video_set     text NOT NULL,
    camera_id     text NOT NULL,
    version       integer NOT NULL,
    homography    double precision[] NOT NULL,
    points_image  double precision[] NOT NULL DEFAULT '{}',
    points_floor  double precision[] NOT NULL DEFAULT '{}',
    camera_matrix double precision[],
    dist_coeffs   double precision[],
    foot_offset_px double precision[] NOT NULL DEFAULT '{0,0}',
    reprojection_error_m double precision NOT NULL DEFAULT 0,
    source        text NOT NULL CHECK (source IN ('yaml', 'api')),
    yaml_hash     text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (video_set, camera_id, version)
);
