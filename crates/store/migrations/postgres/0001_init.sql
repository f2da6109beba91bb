-- Roster's initial schema, PostgreSQL flavour.
--
-- Keep in step with ../sqlite/0001_init.sql: both folders must define the
-- same migration versions, tables and index names (tests/store_suite.rs
-- checks). Migrations are forward-only: never edit one that has shipped.
-- The conventions (seq, millisecond timestamps, doc, display, member kinds)
-- are described there.

CREATE TABLE users (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id UUID NOT NULL,
    user_name_folded TEXT NOT NULL,
    external_id TEXT,
    display TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    version BIGINT NOT NULL,
    created BIGINT NOT NULL,
    last_modified BIGINT NOT NULL,
    doc TEXT NOT NULL
);

CREATE UNIQUE INDEX users_id ON users (id);
CREATE UNIQUE INDEX users_user_name_folded ON users (user_name_folded);
CREATE INDEX users_external_id ON users (external_id);

CREATE TABLE groups (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id UUID NOT NULL,
    display_name_folded TEXT NOT NULL,
    external_id TEXT,
    display TEXT NOT NULL,
    version BIGINT NOT NULL,
    created BIGINT NOT NULL,
    last_modified BIGINT NOT NULL,
    doc TEXT NOT NULL
);

CREATE UNIQUE INDEX groups_id ON groups (id);
CREATE UNIQUE INDEX groups_display_name_folded ON groups (display_name_folded);
CREATE INDEX groups_external_id ON groups (external_id);

CREATE TABLE group_members (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id UUID NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_id UUID NOT NULL,
    member_kind SMALLINT NOT NULL CHECK (member_kind IN (0, 1))
);

CREATE UNIQUE INDEX group_members_group_member ON group_members (group_id, member_id);
CREATE INDEX group_members_group_seq ON group_members (group_id, seq);
CREATE INDEX group_members_member ON group_members (member_id);

CREATE TABLE api_tokens (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id UUID NOT NULL,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    hash_hex TEXT NOT NULL,
    created BIGINT NOT NULL,
    revoked BIGINT
);

CREATE UNIQUE INDEX api_tokens_id ON api_tokens (id);
CREATE UNIQUE INDEX api_tokens_hash_hex ON api_tokens (hash_hex);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked IS NULL;
