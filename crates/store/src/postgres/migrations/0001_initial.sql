-- Hearth's schema on PostgreSQL, version 1: the SQLite schema at its version 13,
-- with PostgreSQL's types. Ids are 32-hex-digit text, times Unix milliseconds,
-- hashes bytea. Text compares and sorts bytewise (COLLATE "C"), as in SQLite,
-- whatever the cluster's locale.

CREATE TABLE households (
    id         text COLLATE "C" NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    name       text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL
);

CREATE TABLE users (
    id            text COLLATE "C" NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    email         text COLLATE "C" NOT NULL UNIQUE,
    password_hash text NOT NULL,
    household_id  text COLLATE "C" NOT NULL REFERENCES households (id),
    created_at    bigint NOT NULL
);
CREATE INDEX users_by_household ON users (household_id);

CREATE TABLE cameras (
    id              text COLLATE "C" NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    household_id    text COLLATE "C" NOT NULL REFERENCES households (id),
    name            text COLLATE "C" NOT NULL,
    timezone        text NOT NULL,
    epoch           bigint NOT NULL DEFAULT 1 CHECK (epoch >= 1),
    stream_key_hash bytea NOT NULL UNIQUE CHECK (length(stream_key_hash) = 32),
    created_at      bigint NOT NULL,
    bound_at        bigint NOT NULL
);
CREATE INDEX cameras_by_household ON cameras (household_id, name);

CREATE TABLE sessions (
    token_hash bytea NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    public_id  text COLLATE "C" NOT NULL UNIQUE CHECK (length(public_id) = 32),
    user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    holder     bytea CHECK (holder IS NULL OR length(holder) = 16),
    address    text CHECK (address IS NULL OR char_length(address) <= 64),
    client     text CHECK (client IS NULL OR char_length(client) <= 256)
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE shares (
    camera_id  text COLLATE "C" NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at bigint NOT NULL,
    PRIMARY KEY (camera_id, user_id)
);
CREATE INDEX shares_by_user ON shares (user_id);

CREATE TABLE share_invitations (
    camera_id  text COLLATE "C" NOT NULL REFERENCES cameras (id),
    email      text COLLATE "C" NOT NULL CHECK (char_length(email) BETWEEN 1 AND 320),
    epoch      bigint NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (camera_id, email)
);
CREATE INDEX share_invitations_by_email ON share_invitations (email);

-- The audit log: append-only, no foreign keys (it outlives what it names),
-- partitioned by month of `at` (Unix ms). The store creates each month's
-- partition ahead of time; the default partition takes events outside them.
CREATE TABLE audit_events (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    at          bigint NOT NULL,
    kind        text COLLATE "C" NOT NULL CHECK (kind <> ''),
    camera_id   text COLLATE "C",
    user_id     text COLLATE "C",
    integration text,
    grant_id    text,
    detail      text NOT NULL CHECK (jsonb_typeof(detail::jsonb) = 'object')
) PARTITION BY RANGE (at);
CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;
CREATE INDEX audit_events_by_camera ON audit_events (camera_id, at);
CREATE INDEX audit_events_by_time ON audit_events (at, id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END $$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events_default
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- How far each node's local audit journal has been copied (one row a node).
CREATE TABLE audit_journal_marks (
    journal    text COLLATE "C" NOT NULL PRIMARY KEY CHECK (journal <> ''),
    generation bigint NOT NULL CHECK (generation >= 0),
    position   bigint NOT NULL CHECK (position >= 0)
);

CREATE TABLE suspensions (
    kind       text COLLATE "C" NOT NULL CHECK (kind IN ('integration', 'household', 'camera', 'user')),
    target     text COLLATE "C" NOT NULL CHECK (target <> ''),
    reason     text NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (kind, target)
);

CREATE TABLE ended_grant_holders (
    holder bytea PRIMARY KEY CHECK (length(holder) = 16),
    until  bigint NOT NULL
);

CREATE TABLE oauth_clients (
    integration text COLLATE "C" PRIMARY KEY CHECK (integration IN ('google', 'alexa')),
    client_id   text COLLATE "C" NOT NULL UNIQUE CHECK (client_id <> ''),
    secret_hash bytea NOT NULL CHECK (length(secret_hash) = 32),
    created_at  bigint NOT NULL
);

CREATE TABLE oauth_redirect_uris (
    integration text COLLATE "C" NOT NULL REFERENCES oauth_clients (integration) ON DELETE CASCADE,
    uri         text COLLATE "C" NOT NULL CHECK (uri <> ''),
    PRIMARY KEY (integration, uri)
);

CREATE TABLE integration_links (
    id          text COLLATE "C" PRIMARY KEY,
    integration text COLLATE "C" NOT NULL REFERENCES oauth_clients (integration) ON DELETE CASCADE,
    user_id     text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  bigint NOT NULL,
    UNIQUE (integration, user_id)
);
CREATE INDEX integration_links_by_user ON integration_links (user_id);

CREATE TABLE link_cameras (
    link_id   text COLLATE "C" NOT NULL REFERENCES integration_links (id) ON DELETE CASCADE,
    camera_id text COLLATE "C" NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    PRIMARY KEY (link_id, camera_id)
);
CREATE INDEX link_cameras_by_camera ON link_cameras (camera_id);

CREATE TABLE oauth_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    link_id    text COLLATE "C" NOT NULL REFERENCES integration_links (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('access', 'refresh')),
    expires_at bigint NOT NULL,
    rotated    boolean NOT NULL DEFAULT false,
    successor  bytea
);
CREATE INDEX oauth_tokens_by_link ON oauth_tokens (link_id);

CREATE TABLE oauth_codes (
    code_hash      bytea PRIMARY KEY CHECK (length(code_hash) = 32),
    integration    text NOT NULL,
    client_id      text NOT NULL,
    user_id        text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    cameras        text[] NOT NULL,
    redirect_uri   text NOT NULL,
    code_challenge text,
    expires_at     bigint NOT NULL,
    used           boolean NOT NULL DEFAULT false,
    link_id        text COLLATE "C"
);

CREATE TABLE agents (
    id              text COLLATE "C" NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    household_id    text COLLATE "C" NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (name <> ''),
    credential_hash bytea NOT NULL UNIQUE CHECK (length(credential_hash) = 32),
    created_by      text COLLATE "C" REFERENCES users (id) ON DELETE SET NULL,
    created_at      bigint NOT NULL
);
CREATE INDEX agents_by_household ON agents (household_id);

CREATE TABLE agent_claims (
    code_hash    bytea NOT NULL PRIMARY KEY CHECK (length(code_hash) = 32),
    household_id text COLLATE "C" NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    created_by   text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at   bigint NOT NULL
);

CREATE TABLE camera_sources (
    camera_id  text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    sealed     bytea NOT NULL,
    updated_at bigint NOT NULL,
    agent_id   text COLLATE "C" REFERENCES agents (id) ON DELETE CASCADE
);

CREATE TABLE camera_drafts (
    camera_id  text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    expires_at bigint NOT NULL
);

CREATE TABLE viewer_keys (
    id         text COLLATE "C" NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (name <> ''),
    created_at bigint NOT NULL
);
CREATE INDEX viewer_keys_by_user ON viewer_keys (user_id);

CREATE TABLE viewer_key_cameras (
    key_id    text COLLATE "C" NOT NULL REFERENCES viewer_keys (id) ON DELETE CASCADE,
    camera_id text COLLATE "C" NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    PRIMARY KEY (key_id, camera_id)
);

-- The change counter (`Store::generation`): bumped in the same transaction as
-- every row change that can change access, as SQLite's triggers do.
CREATE TABLE meta (
    id         integer PRIMARY KEY CHECK (id = 1),
    generation bigint NOT NULL
);
INSERT INTO meta (id, generation) VALUES (1, 0);

CREATE FUNCTION bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE meta SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END $$;

CREATE TRIGGER shares_generation AFTER INSERT OR UPDATE OR DELETE ON shares
    FOR EACH ROW EXECUTE FUNCTION bump_generation();
CREATE TRIGGER cameras_generation_insert_delete AFTER INSERT OR DELETE ON cameras
    FOR EACH ROW EXECUTE FUNCTION bump_generation();
CREATE TRIGGER cameras_generation_update
    AFTER UPDATE OF id, household_id, epoch, stream_key_hash ON cameras
    FOR EACH ROW EXECUTE FUNCTION bump_generation();
CREATE TRIGGER users_generation AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION bump_generation();
CREATE TRIGGER suspensions_generation AFTER INSERT OR UPDATE OR DELETE ON suspensions
    FOR EACH ROW EXECUTE FUNCTION bump_generation();
CREATE TRIGGER ended_grant_holders_generation AFTER INSERT ON ended_grant_holders
    FOR EACH ROW EXECUTE FUNCTION bump_generation();
CREATE TRIGGER integration_links_generation AFTER INSERT OR DELETE ON integration_links
    FOR EACH ROW EXECUTE FUNCTION bump_generation();
CREATE TRIGGER link_cameras_generation AFTER INSERT OR DELETE ON link_cameras
    FOR EACH ROW EXECUTE FUNCTION bump_generation();
CREATE TRIGGER camera_sources_generation AFTER INSERT OR UPDATE OR DELETE ON camera_sources
    FOR EACH ROW EXECUTE FUNCTION bump_generation();
CREATE TRIGGER viewer_keys_generation AFTER INSERT OR DELETE ON viewer_keys
    FOR EACH ROW EXECUTE FUNCTION bump_generation();
CREATE TRIGGER viewer_key_cameras_generation AFTER INSERT OR DELETE ON viewer_key_cameras
    FOR EACH ROW EXECUTE FUNCTION bump_generation();
CREATE TRIGGER agents_generation AFTER INSERT OR DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION bump_generation();

-- The role that migrates and runs Hearth may read and append the audit log,
-- never change it (an owner can take privileges from itself).
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, audit_events_default FROM CURRENT_USER;
