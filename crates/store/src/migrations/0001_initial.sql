-- Schema version 1: households, users, cameras, login sessions.
--
-- Ids are the 32-hex-digit simple form of a UUID (as in URLs); times are Unix
-- milliseconds; secrets appear only as 32-byte SHA-256 hashes. STRICT tables make
-- SQLite enforce the declared column types.

CREATE TABLE households (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    -- Trimmed and lower-cased by the store before it gets here.
    email         TEXT    NOT NULL UNIQUE,
    -- An argon2 PHC string computed by the caller; never a password.
    password_hash TEXT    NOT NULL,
    household_id  TEXT    NOT NULL REFERENCES households (id),
    created_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX users_by_household ON users (household_id);

CREATE TABLE cameras (
    id              TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    household_id    TEXT    NOT NULL REFERENCES households (id),
    name            TEXT    NOT NULL,
    -- IANA time zone name, for the camera's on-screen local time.
    timezone        TEXT    NOT NULL,
    -- Binding epoch: bumped on transfer or reset to invalidate older grants.
    epoch           INTEGER NOT NULL DEFAULT 1 CHECK (epoch >= 1),
    stream_key_hash BLOB    NOT NULL UNIQUE CHECK (length(stream_key_hash) = 32),
    created_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX cameras_by_household ON cameras (household_id, name);

CREATE TABLE sessions (
    token_hash BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
