-- A counter of changes to tenants and flows, bumped by triggers, so that the daemon re-reads
-- (and decrypts) every tenant and flow only when one of them changed — not on every reload of
-- 1,000 idle connections. Triggers count the writes of every writer, the CLI of an older
-- release included. A flow's `last_sync_at` (written after every cycle) is not a change the
-- daemon acts on, so it is left out.
CREATE TABLE catalog_version (
    id      smallint PRIMARY KEY CHECK (id = 1),
    version bigint   NOT NULL
);

INSERT INTO catalog_version (id, version) VALUES (1, 0);

CREATE FUNCTION bump_catalog_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_changed
AFTER INSERT OR UPDATE OR DELETE ON tenants
FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_version();

CREATE TRIGGER flows_changed
AFTER INSERT OR DELETE
   OR UPDATE OF id, tenant_id, kind, name, is_active, interval_seconds, settings, secrets,
                created_at, updated_at
ON flows
FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_version();
