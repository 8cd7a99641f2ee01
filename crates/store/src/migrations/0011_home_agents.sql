-- Schema version 11: home agents, Hearths on a LAN that pull a household's
-- cameras (which this server cannot reach) and push them here over TLS.
--
-- An agent is made by redeeming a one-time claim code an owner asked for; its
-- credential is stored as a SHA-256 hash, like every token. A camera pulled by
-- an agent has its source in `camera_sources` (sealed, as for cameras this
-- server pulls) with `agent_id` naming the agent; removing the agent removes
-- those sources (the server rotates the cameras' stream keys first).

CREATE TABLE agents (
    id              TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    household_id    TEXT    NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL CHECK (name <> ''),
    credential_hash BLOB    NOT NULL UNIQUE CHECK (length(credential_hash) = 32),
    created_by      TEXT    REFERENCES users (id) ON DELETE SET NULL,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX agents_by_household ON agents (household_id);

CREATE TABLE agent_claims (
    code_hash    BLOB    NOT NULL PRIMARY KEY CHECK (length(code_hash) = 32),
    household_id TEXT    NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    created_by   TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at   INTEGER NOT NULL
) STRICT;

ALTER TABLE camera_sources ADD COLUMN agent_id TEXT REFERENCES agents (id) ON DELETE CASCADE;

CREATE TRIGGER agents_generation_insert AFTER INSERT ON agents
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER agents_generation_delete AFTER DELETE ON agents
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
