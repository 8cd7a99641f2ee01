-- A share starts as an invitation the recipient accepts. It is made out to an
-- email (whether or not an account has it yet: the owner learns nothing about
-- who has an account) under the camera's binding epoch of the moment: a
-- transfer or reset voids it.
CREATE TABLE share_invitations (
    camera_id  TEXT    NOT NULL REFERENCES cameras (id),
    email      TEXT    NOT NULL CHECK (length(email) BETWEEN 1 AND 320),
    epoch      INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (camera_id, email)
) STRICT;

CREATE INDEX share_invitations_by_email ON share_invitations (email);
