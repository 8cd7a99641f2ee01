-- Schema version 4: smart-display integrations (Google Home, Alexa) linked by OAuth.
--
-- Conventions as before: ids are 32-hex-digit text, times Unix milliseconds, token
-- hashes 32-byte SHA-256 BLOBs (no secret is ever stored), STRICT tables.

-- The OAuth clients the operator registered (`hearth integration add`): one per
-- integration. Redirect URIs are matched exactly, byte for byte.
CREATE TABLE oauth_clients (
    integration TEXT    PRIMARY KEY CHECK (integration IN ('google', 'alexa')),
    client_id   TEXT    NOT NULL UNIQUE CHECK (client_id <> ''),
    secret_hash BLOB    NOT NULL CHECK (length(secret_hash) = 32),
    created_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE oauth_redirect_uris (
    integration TEXT NOT NULL REFERENCES oauth_clients (integration) ON DELETE CASCADE,
    uri         TEXT NOT NULL CHECK (uri <> ''),
    PRIMARY KEY (integration, uri)
) STRICT, WITHOUT ROWID;

-- An account link: one user authorized one integration for the cameras listed in
-- link_cameras. At most one per (integration, user): linking again replaces it.
-- Deleting a link (unlink, DISCONNECT, token revocation, code replay) deletes its
-- tokens and consents with it, and moves the generation, so every stream the
-- link opened is refused at the next request.
CREATE TABLE integration_links (
    id          TEXT    PRIMARY KEY,
    integration TEXT    NOT NULL REFERENCES oauth_clients (integration) ON DELETE CASCADE,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    UNIQUE (integration, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX integration_links_by_user ON integration_links (user_id);

-- The cameras the user consented to show through the link.
CREATE TABLE link_cameras (
    link_id   TEXT NOT NULL REFERENCES integration_links (id) ON DELETE CASCADE,
    camera_id TEXT NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    PRIMARY KEY (link_id, camera_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX link_cameras_by_camera ON link_cameras (camera_id);

-- Access and refresh tokens of a link. A refresh token that was exchanged stays,
-- marked rotated and naming its successor, until it expires. Presented again
-- before the successor was ever used, it is a client's retry (a lost response)
-- and rotates again; presented after, it is a replay and revokes the link.
CREATE TABLE oauth_tokens (
    token_hash BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
    link_id    TEXT    NOT NULL REFERENCES integration_links (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('access', 'refresh')),
    expires_at INTEGER NOT NULL,
    rotated    INTEGER NOT NULL DEFAULT 0 CHECK (rotated IN (0, 1)),
    successor  BLOB
) STRICT, WITHOUT ROWID;

CREATE INDEX oauth_tokens_by_link ON oauth_tokens (link_id);

-- Authorization codes (RFC 6749 4.1), single use. A used code stays until it
-- expires, naming the link it created: a second use revokes that link (4.1.2).
CREATE TABLE oauth_codes (
    code_hash      BLOB    PRIMARY KEY CHECK (length(code_hash) = 32),
    integration    TEXT    NOT NULL,
    client_id      TEXT    NOT NULL,
    user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- A JSON array of camera ids.
    cameras        TEXT    NOT NULL CHECK (json_valid(cameras) AND json_type(cameras) = 'array'),
    redirect_uri   TEXT    NOT NULL,
    code_challenge TEXT,
    expires_at     INTEGER NOT NULL,
    used           INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1)),
    link_id        TEXT
) STRICT, WITHOUT ROWID;

CREATE TRIGGER integration_links_generation_insert AFTER INSERT ON integration_links
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER integration_links_generation_delete AFTER DELETE ON integration_links
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER link_cameras_generation_insert AFTER INSERT ON link_cameras
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER link_cameras_generation_delete AFTER DELETE ON link_cameras
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
