-- Keeps the version numbers in step with ../postgres/0005_directory_notify.sql,
-- which makes PostgreSQL notify every replica of directory writes. SQLite
-- needs nothing: one process writes, and its writer moves the directory
-- generation itself.
SELECT 1;
