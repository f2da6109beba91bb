-- Backstage entity names (`metadata.name`) for users and groups.
--
-- Keep in step with ../postgres/0002_entity_names.sql.
--
-- A name is chosen once, the first time the resource is published, and then
-- never recomputed: renaming a user or group does not move its catalog
-- entity. NULL until chosen. Stored lowercase because Backstage compares
-- names case-insensitively, so uniqueness (among users, and among groups)
-- is on the folded form; NULLs never collide.
ALTER TABLE users ADD COLUMN entity_name TEXT CHECK (entity_name = lower(entity_name));
CREATE UNIQUE INDEX users_entity_name ON users (entity_name);
-- Only the rows still waiting for a name, so finding them never walks the
-- named ones.
CREATE INDEX users_unnamed ON users (seq) WHERE entity_name IS NULL;

ALTER TABLE groups ADD COLUMN entity_name TEXT CHECK (entity_name = lower(entity_name));
CREATE UNIQUE INDEX groups_entity_name ON groups (entity_name);
CREATE INDEX groups_unnamed ON groups (seq) WHERE entity_name IS NULL;
