-- Schema version 9: cameras Hearth pulls (RTSP) rather than ones that push.
--
-- `sealed` is the source (URLs, user name, password) encrypted by the server
-- with AES-256-GCM under a key derived from its master key, the camera's id as
-- associated data (crates/access/src/sealed.rs): the database alone reveals no
-- camera's password, and a row copied to another camera does not open. A camera
-- without a row here is a push camera (RTMP). Changes bump the generation, so
-- every process pulls what the store says.

CREATE TABLE camera_sources (
    camera_id  TEXT    NOT NULL PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    sealed     BLOB    NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TRIGGER camera_sources_generation_insert AFTER INSERT ON camera_sources
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER camera_sources_generation_update AFTER UPDATE ON camera_sources
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER camera_sources_generation_delete AFTER DELETE ON camera_sources
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
