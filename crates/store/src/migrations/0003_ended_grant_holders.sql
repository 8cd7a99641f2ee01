-- Sessions that signed out, by the 16-byte digest their stream grants carry
-- (`Holder` in crates/server/src/grant.rs), kept until the last grant such a
-- session could hold has expired (`until`, unix ms). The server's access view
-- loads them, so a sign-out stops that session's streams in every server process
-- and across restarts, not only in the process that took the sign-out.
CREATE TABLE ended_grant_holders (
    holder BLOB PRIMARY KEY CHECK (length(holder) = 16),
    until  INTEGER NOT NULL
) STRICT;

CREATE TRIGGER ended_grant_holders_generation_insert AFTER INSERT ON ended_grant_holders
BEGIN UPDATE meta SET generation = generation + 1 WHERE id = 1; END;
