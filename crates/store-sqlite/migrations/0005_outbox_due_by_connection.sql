-- A connection's due packets, in claim order: each connection's dispatcher claims its own,
-- and without this index every claim walked the due packets of every connection.
CREATE INDEX IF NOT EXISTS outbox_due_by_connection ON outbox (connection_id, next_attempt_at, id)
    WHERE status = 'PENDING';
