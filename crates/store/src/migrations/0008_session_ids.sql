-- Schema version 8: sessions a user can list and end one by one.
--
-- `public_id` names a session in the API (the list of signed-in sessions, ending
-- one): random, unrelated to the token, so it signs nothing in. `holder` is the
-- digest the session's stream grants carry (`Holder` in crates/access/src/grant.rs):
-- ending a session from another one records it in `ended_grant_holders`, as a
-- sign-out does, so its streams stop too. Sessions from before this version have
-- none (their grants run out within minutes). `address` and `client` (the
-- User-Agent, cut short) say where and with what it signed in, for the user to
-- tell their sessions apart; NULL when unknown.
--
-- A rebuild rather than ADD COLUMN, so that `public_id` is NOT NULL; existing
-- sessions get a random id and stay signed in. Nothing references `sessions`.

CREATE TABLE sessions_v7 (
    token_hash BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    public_id  TEXT    NOT NULL CHECK (length(public_id) = 32),
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    holder     BLOB    CHECK (holder IS NULL OR length(holder) = 16),
    address    TEXT    CHECK (address IS NULL OR length(address) <= 64),
    client     TEXT    CHECK (client IS NULL OR length(client) <= 256)
) STRICT;

INSERT INTO sessions_v7 (token_hash, public_id, user_id, created_at, expires_at)
    SELECT token_hash, lower(hex(randomblob(16))), user_id, created_at, expires_at
    FROM sessions;

DROP TABLE sessions;
ALTER TABLE sessions_v7 RENAME TO sessions;

CREATE UNIQUE INDEX sessions_by_public_id ON sessions (public_id);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
