-- A counter of changes to tenants and flows, bumped by triggers, so that the daemon re-reads
-- (and decrypts) every tenant and flow only when one of them changed — not on every reload of
-- 1,000 idle connections. Triggers count the writes of every writer, the CLI of an older
-- release included. A flow's `last_sync_at` (written after every cycle) is not a change the
-- daemon acts on, so it is left out.
CREATE TABLE catalog_version (
    id      INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    version INTEGER NOT NULL
);

INSERT INTO catalog_version (id, version) VALUES (1, 0);

CREATE TRIGGER tenants_inserted AFTER INSERT ON tenants
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER tenants_updated AFTER UPDATE ON tenants
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER tenants_deleted AFTER DELETE ON tenants
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER flows_inserted AFTER INSERT ON flows
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER flows_updated
AFTER UPDATE OF id, tenant_id, kind, name, is_active, interval_seconds, settings, secrets,
                created_at, updated_at ON flows
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER flows_deleted AFTER DELETE ON flows
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
END;
