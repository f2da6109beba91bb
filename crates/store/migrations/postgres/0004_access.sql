-- Access control: custom roles, assignments, the change record, and the
-- policy revision.
--
-- Keep in step with ../sqlite/0004_access.sql.
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
    updated BIGINT NOT NULL
);

CREATE TABLE access_assignments (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id UUID NOT NULL,
    role TEXT NOT NULL,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('user', 'group')),
    subject_id UUID NOT NULL,
    expires BIGINT,
    created BIGINT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE UNIQUE INDEX access_assignments_id ON access_assignments (id);
CREATE UNIQUE INDEX access_assignments_role_subject
    ON access_assignments (role, subject_kind, subject_id);

CREATE TABLE access_changes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before_doc TEXT,
    after_doc TEXT
);

CREATE TABLE access_revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);

INSERT INTO access_revision (id, revision) VALUES (1, 0);
