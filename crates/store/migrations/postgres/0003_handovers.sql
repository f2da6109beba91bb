-- Ownership handovers and the record of applied reconcile fixes.
--
-- Keep in step with ../sqlite/0003_handovers.sql, which explains the
-- columns.
CREATE TABLE handovers (
    user_id UUID PRIMARY KEY,
    user_name TEXT NOT NULL,
    entity_name TEXT,
    successor TEXT NOT NULL,
    successor_id UUID,
    reason TEXT NOT NULL CHECK (reason IN ('manager', 'primary-group', 'fallback', 'manual')),
    recorded_at BIGINT NOT NULL,
    recorded_by TEXT NOT NULL
);

CREATE INDEX handovers_entity_name ON handovers (entity_name);

CREATE TABLE reconcile_fixes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    applied_at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    finding TEXT NOT NULL,
    entity_ref TEXT,
    uid TEXT,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT
);

CREATE INDEX reconcile_fixes_applied_at ON reconcile_fixes (applied_at);
