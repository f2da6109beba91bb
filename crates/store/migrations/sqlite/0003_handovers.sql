-- Ownership handovers and the record of applied reconcile fixes.
--
-- Keep in step with ../postgres/0003_handovers.sql.
--
-- `handovers`: per offboarded (deleted or deactivated) user, who takes over
-- the catalog entities they own. It keeps what is needed once the user row
-- is gone, so it has no foreign key to `users`: the user's id, userName and
-- Backstage entity name (NULL if it was never published), the successor as
-- a Backstage entity ref (`user:default/jane.doe`, `group:default/payments`)
-- with its Roster id when known, why it was chosen, when and by whom.
-- One row per user: a later offboarding replaces an automatic choice but
-- never a manual one (the store enforces this).
CREATE TABLE handovers (
    user_id BLOB PRIMARY KEY,
    user_name TEXT NOT NULL,
    entity_name TEXT,
    successor TEXT NOT NULL,
    successor_id BLOB,
    reason TEXT NOT NULL CHECK (reason IN ('manager', 'primary-group', 'fallback', 'manual')),
    recorded_at INTEGER NOT NULL,
    recorded_by TEXT NOT NULL
) STRICT;

CREATE INDEX handovers_entity_name ON handovers (entity_name);

-- `reconcile_fixes`: every fix `roster reconcile --apply` (or an API apply)
-- carried out against the catalog, with its outcome. Append-only; `seq`
-- orders it.
CREATE TABLE reconcile_fixes (
    seq INTEGER PRIMARY KEY,
    applied_at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    finding TEXT NOT NULL,
    entity_ref TEXT,
    uid TEXT,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT
) STRICT;

CREATE INDEX reconcile_fixes_applied_at ON reconcile_fixes (applied_at);
