-- Version 13: one journal mark per audit journal. Several Hearth nodes can share
-- one database (PostgreSQL), each copying its own local journal; a single mark
-- would let one node's progress stand for another's. A journal names itself
-- (`journal.id` beside its files); the mark of the one journal there was before
-- is kept under the name 'local', which that journal adopts.
CREATE TABLE audit_journal_marks (
    journal    TEXT    NOT NULL PRIMARY KEY CHECK (journal <> ''),
    generation INTEGER NOT NULL CHECK (generation >= 0),
    position   INTEGER NOT NULL CHECK (position >= 0)
) STRICT, WITHOUT ROWID;

INSERT INTO audit_journal_marks (journal, generation, position)
    SELECT 'local', generation, position FROM audit_journal_mark WHERE id = 1;

DROP TABLE audit_journal_mark;
