-- Schema version 2: view-only sharing, the append-only audit log, kill switches,
-- and a change counter for the server's access-view refresh loop.
--
-- Conventions as in version 1: ids are 32-hex-digit text, times Unix milliseconds,
-- STRICT tables.

-- A camera shared view-only with a user outside the camera's household. The store
-- refuses shares to members of the camera's own household, and transfer/reset
-- delete a camera's shares, so the two ways of seeing a camera never overlap.
CREATE TABLE shares (
    camera_id  TEXT    NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (camera_id, user_id)
) STRICT, WITHOUT ROWID;

-- "Which cameras are shared with this user" (visibility, per user).
CREATE INDEX shares_by_user ON shares (user_id);

-- The audit log. No foreign keys on purpose: it must outlive deleted users and
-- cameras, and it records ids that never existed (a refused request names what
-- was asked for).
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind <> ''),
    camera_id   TEXT,
    user_id     TEXT,
    integration TEXT,
    grant_id    TEXT,
    -- A JSON object.
    detail      TEXT    NOT NULL CHECK (json_valid(detail) AND json_type(detail) = 'object')
) STRICT;

CREATE INDEX audit_events_by_camera ON audit_events (camera_id, at);
CREATE INDEX audit_events_by_time ON audit_events (at);

-- Append-only, enforced by the database itself, for every connection (the server,
-- the CLI, the sqlite3 shell): rows can be inserted, never changed or removed.
-- UPDATE and UPSERT fire the update trigger. DELETE (also without WHERE: triggers
-- disable SQLite's truncate shortcut) fires the delete trigger. INSERT OR REPLACE
-- on an existing id would delete the old row *without* firing delete triggers
-- (unless recursive_triggers is on), so inserts that reuse an id are refused too.
-- What no trigger can stop: DROP TABLE, or editing the file. Those need the
-- operator's file permissions (the data directory is owner-only).
CREATE TRIGGER audit_events_no_update
BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete
BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_overwrite
BEFORE INSERT ON audit_events
WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit_events WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- Kill switches. target is an integration name (lower case) or the id of a
-- household, camera or user. No foreign keys: a switch may name a target that is
-- later deleted, and stays meaningful in the audit trail.
CREATE TABLE suspensions (
    kind       TEXT    NOT NULL CHECK (kind IN ('integration', 'household', 'camera', 'user')),
    target     TEXT    NOT NULL CHECK (target <> ''),
    reason     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (kind, target)
) STRICT, WITHOUT ROWID;

-- One row: a counter bumped (by the triggers below) in the same transaction as
-- every write that can change who may see what. The server polls it, cheaply and
-- from another process if need be, and rebuilds its access view only when it moved.
CREATE TABLE meta (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
) STRICT;

INSERT INTO meta (id, generation) VALUES (1, 0);

CREATE TRIGGER shares_generation_insert AFTER INSERT ON shares
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER shares_generation_update AFTER UPDATE ON shares
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER shares_generation_delete AFTER DELETE ON shares
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;

-- Cameras: only the columns access depends on (a rename does not count).
CREATE TRIGGER cameras_generation_insert AFTER INSERT ON cameras
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER cameras_generation_update
AFTER UPDATE OF id, household_id, epoch, stream_key_hash ON cameras
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER cameras_generation_delete AFTER DELETE ON cameras
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;

-- Users: any change (over-reporting costs one rebuild; user rows change rarely).
CREATE TRIGGER users_generation_insert AFTER INSERT ON users
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER users_generation_update AFTER UPDATE ON users
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER users_generation_delete AFTER DELETE ON users
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;

CREATE TRIGGER suspensions_generation_insert AFTER INSERT ON suspensions
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER suspensions_generation_update AFTER UPDATE ON suspensions
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER suspensions_generation_delete AFTER DELETE ON suspensions
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
