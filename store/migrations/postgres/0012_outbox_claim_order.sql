-- A lane claims its due commands in (next_at, seq) order (see claimSQL):
-- with seq in the index the claim reads the first rows in order and stops,
-- where (target, next_at) alone made PostgreSQL sort every row sharing a
-- next_at. SQLite's index ends in the rowid, which is the same order.
CREATE INDEX outbox_target_due_seq ON outbox (target, next_at, seq) WHERE state = 'pending';
DROP INDEX outbox_target_due;
