-- Done commands and fulfilments are most rows, and the indexes below never
-- serve them: the claim and the depth read pending commands, dead-letter
-- listings dead or discarded ones; a revoke looks up the revokes of one
-- fulfilment. Leaving those rows out spares every accepted and granted order
-- two index writes, and a commit of one order 2 of its 17.6 log pages
-- (BenchmarkCommitSize). SQLite uses a partial index only for a query that
-- repeats its condition, so those queries do (see TestSQLite_QueryPlans).
DROP INDEX outbox_state;
CREATE INDEX outbox_state ON outbox (state, next_at) WHERE state <> 'done';
DROP INDEX ledger_transactions_reverses;
CREATE INDEX ledger_transactions_reverses ON ledger_transactions (reverses) WHERE reverses <> '';
