-- Schema version 10: viewer keys, for players and recorders that cannot send
-- headers (VLC, Home Assistant, Frigate, Blue Iris).
--
-- A key is a named, revocable credential of one user for a set of cameras; its
-- grants are audited as their own principal (integration `restream`). No
-- secret is stored: the key's secret is derived by the server from its master
-- key and the key's id (crates/access/src/keys.rs). Revoking deletes the row
-- (the audit keeps what it did); changes bump the generation, so every process
-- refuses a revoked key's streams at once.

CREATE TABLE viewer_keys (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL CHECK (name <> ''),
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX viewer_keys_by_user ON viewer_keys (user_id);

CREATE TABLE viewer_key_cameras (
    key_id    TEXT NOT NULL REFERENCES viewer_keys (id) ON DELETE CASCADE,
    camera_id TEXT NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    PRIMARY KEY (key_id, camera_id)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER viewer_keys_generation_insert AFTER INSERT ON viewer_keys
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER viewer_keys_generation_delete AFTER DELETE ON viewer_keys
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER viewer_key_cameras_generation_insert AFTER INSERT ON viewer_key_cameras
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER viewer_key_cameras_generation_delete AFTER DELETE ON viewer_key_cameras
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
