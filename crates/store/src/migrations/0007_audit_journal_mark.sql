-- How far the server's local audit journal has been copied into audit_events:
-- written in the same transaction as the events it covers, so a restart after a
-- crash copies the rest exactly once. One row at most.
CREATE TABLE audit_journal_mark (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL CHECK (generation >= 0),
    position   INTEGER NOT NULL CHECK (position >= 0)
);
