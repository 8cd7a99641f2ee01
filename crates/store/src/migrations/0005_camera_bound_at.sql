-- When each camera's current binding epoch began: creation, or its last transfer
-- or reset. The owner's access log starts there, so a new owner never sees the
-- previous household's viewers. Existing cameras take their last transfer or
-- reset from the audit log, else their creation.
ALTER TABLE cameras ADD COLUMN bound_at INTEGER NOT NULL DEFAULT 0;

UPDATE cameras SET bound_at = max(
    created_at,
    coalesce(
        (SELECT max(a.at) FROM audit_events a
         WHERE a.camera_id = cameras.id AND a.kind IN ('transfer', 'reset')),
        0
    )
);
