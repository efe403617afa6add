-- Fulfillments are most transactions, and this index never serves them: a
-- revoke looks up the revokes of one fulfillment. Leaving them out spares
-- every granted order an index write (with the store's 0006_partial_indexes,
-- 2 of the 17.6 log pages of a commit of one order: BenchmarkCommitSize).
-- SQLite uses a partial index only for a query that repeats its condition,
-- so the revoke's does (see TestSQLite_RemainingUsesTheReversesIndex).
--
-- Databases made before the ledger kept its own migrations had this from
-- 0006_partial_indexes, or still have the full index of 0003_economy if they
-- stopped before it: dropping and making it again suits both, and costs one
-- pass over ledger_transactions.
DROP INDEX IF EXISTS ledger_transactions_reverses;
CREATE INDEX ledger_transactions_reverses ON ledger_transactions (reverses) WHERE reverses <> '';
