-- Enrichment jobs are flows of the engine now: each emission is a packet of the outbox (one
-- per job, record and packet version, written before it is sent, leased by one worker, retried
-- on the outbox's schedule), so their own emission and replay tables go. No release wrote them.
-- The environment binding they held is the whole store's: every flow's packets are refused by
-- a store of another environment.
DROP TABLE enrich_replays;
DROP TABLE enrich_emissions;
ALTER TABLE enrich_environment RENAME TO store_environment;
