-- Done commands are most rows, and the index below never serves them: the
-- claim and the depth read pending commands, dead-letter listings dead or
-- discarded ones. Leaving them out spares every accepted order an index
-- write (the ledger does the same for fulfillments: its
-- 0006_ledger_partial_index). SQLite uses a partial index only for a query
-- that repeats its condition, so those queries do (see TestSQLite_QueryPlans).
DROP INDEX outbox_state;
CREATE INDEX outbox_state ON outbox (state, next_at) WHERE state <> 'done';
