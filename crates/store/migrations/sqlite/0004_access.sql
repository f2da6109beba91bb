-- Access control: custom roles, assignments, the change record, and the
-- policy revision.
--
-- Keep in step with ../postgres/0004_access.sql.
--
-- Built-in roles live in the binary, not here. A custom role is stored as
-- its policy-document JSON (validated before it is written). Assignments
-- name their subject by kind and id, so renaming a user or group changes
-- nothing; an assignment whose subject is deleted simply never applies.
-- Every change bumps `access_revision.revision` in the same transaction;
-- replicas compare that one number to know their policy is current.

CREATE TABLE access_roles (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    updated INTEGER NOT NULL
) STRICT;

CREATE TABLE access_assignments (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL,
    role TEXT NOT NULL,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('user', 'group')),
    subject_id BLOB NOT NULL,
    expires INTEGER,
    created INTEGER NOT NULL,
    created_by TEXT NOT NULL
) STRICT;

CREATE UNIQUE INDEX access_assignments_id ON access_assignments (id);
CREATE UNIQUE INDEX access_assignments_role_subject
    ON access_assignments (role, subject_kind, subject_id);

CREATE TABLE access_changes (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before_doc TEXT,
    after_doc TEXT
) STRICT;

CREATE TABLE access_revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
) STRICT;

INSERT INTO access_revision (id, revision) VALUES (1, 0);
