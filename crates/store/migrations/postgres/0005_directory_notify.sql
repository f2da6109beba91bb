-- Every replica caches who a caller is (their user row, their groups) until
-- the directory changes. A replica knows of its own writes; these triggers
-- tell every replica of the others': each statement that changes users,
-- groups or memberships sends a notification on channel `roster_directory`,
-- delivered when its transaction commits (identical notifications of one
-- transaction are sent once).
--
-- SQLite has no counterpart: there, one process writes.
CREATE FUNCTION roster_notify_directory() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('roster_directory', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION roster_notify_directory();
CREATE TRIGGER groups_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON groups
    FOR EACH STATEMENT EXECUTE FUNCTION roster_notify_directory();
CREATE TRIGGER group_members_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON group_members
    FOR EACH STATEMENT EXECUTE FUNCTION roster_notify_directory();
