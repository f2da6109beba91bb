-- Roster's initial schema, SQLite flavour.
--
-- Keep in step with ../postgres/0001_init.sql: both folders must define the
-- same migration versions, tables and index names (tests/store_suite.rs
-- checks). Migrations are forward-only: never edit one that has shipped.
--
-- Conventions shared by both databases:
-- * `seq` is the creation order; listing and paging sort by it.
-- * Resource ids are UUIDs (16-byte BLOBs here, UUID in PostgreSQL).
-- * Timestamps are Unix milliseconds (INTEGER), so both round-trip to the
--   millisecond and compare numerically.
-- * `doc` is the JSON of the resource's client-writable attributes; `meta`
--   lives in columns so that bumping a version never rewrites the document.
-- * `display` is what a membership shows for the resource (a user's
--   displayName, else its userName; a group's displayName).
-- * Member kinds: 0 = User, 1 = Group.

CREATE TABLE users (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL,
    user_name_folded TEXT NOT NULL,
    external_id TEXT,
    display TEXT NOT NULL,
    active INTEGER NOT NULL,
    version INTEGER NOT NULL,
    created INTEGER NOT NULL,
    last_modified INTEGER NOT NULL,
    doc TEXT NOT NULL
) STRICT;

CREATE UNIQUE INDEX users_id ON users (id);
CREATE UNIQUE INDEX users_user_name_folded ON users (user_name_folded);
CREATE INDEX users_external_id ON users (external_id);

CREATE TABLE groups (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL,
    display_name_folded TEXT NOT NULL,
    external_id TEXT,
    display TEXT NOT NULL,
    version INTEGER NOT NULL,
    created INTEGER NOT NULL,
    last_modified INTEGER NOT NULL,
    doc TEXT NOT NULL
) STRICT;

CREATE UNIQUE INDEX groups_id ON groups (id);
CREATE UNIQUE INDEX groups_display_name_folded ON groups (display_name_folded);
CREATE INDEX groups_external_id ON groups (external_id);

-- One row per direct membership. `member_id` names a user or a group
-- (`member_kind`), so it has no foreign key; the store removes memberships
-- when it deletes the member. `seq` keeps insertion order;
-- `group_members_group_seq` lets a group's members be read in that order
-- without a sort and without visiting the table in random order.
CREATE TABLE group_members (
    seq INTEGER PRIMARY KEY,
    group_id BLOB NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_id BLOB NOT NULL,
    member_kind INTEGER NOT NULL CHECK (member_kind IN (0, 1))
) STRICT;

CREATE UNIQUE INDEX group_members_group_member ON group_members (group_id, member_id);
CREATE INDEX group_members_group_seq ON group_members (group_id, seq);
CREATE INDEX group_members_member ON group_members (member_id);

-- API tokens: only the SHA-256 of the secret is kept. A name is unique among
-- active (unrevoked) tokens.
CREATE TABLE api_tokens (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    hash_hex TEXT NOT NULL,
    created INTEGER NOT NULL,
    revoked INTEGER
) STRICT;

CREATE UNIQUE INDEX api_tokens_id ON api_tokens (id);
CREATE UNIQUE INDEX api_tokens_hash_hex ON api_tokens (hash_hex);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked IS NULL;
