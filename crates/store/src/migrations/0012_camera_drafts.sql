-- Schema version 12: cameras on trial. "Test connection" in the web app adds
-- the camera for real (so its first picture reaches the owner through the
-- door like any other), marked as a draft until the owner saves it; a draft
-- not saved by `expires_at` is deleted. Drafts are left out of the camera
-- lists that share, link or restream cameras.

CREATE TABLE camera_drafts (
    camera_id  TEXT    NOT NULL PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) STRICT;
