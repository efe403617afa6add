-- The full economy: kinds and running totals on wallet entries, use counts
-- on entitlements, the request behind each transaction (idempotency checks
-- and full revokes), and the AGS-shaped revocation history.

-- kind: fulfill, revoke, spend, adjustment. total_after: the currency's total
-- across platforms after the entry (0 on entries written before 0003).
ALTER TABLE ledger_entries ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger_entries ADD COLUMN total_after BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_entries ADD COLUMN order_ref TEXT NOT NULL DEFAULT '';
UPDATE ledger_entries SET kind = CASE WHEN reason = 'fulfill' THEN 'fulfill' ELSE 'revoke' END;

-- use_count is the uses left; granted_count what the grant gave;
-- consumed_count what the game consumed. Status: active, consumed, revoked.
ALTER TABLE ledger_entitlements ADD COLUMN granted_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_entitlements ADD COLUMN consumed_count BIGINT NOT NULL DEFAULT 0;
UPDATE ledger_entitlements SET granted_count = use_count;
CREATE INDEX ledger_entitlements_item ON ledger_entitlements (player_id, item);

-- request: the JSON of what was asked (a fulfillment's command, a spend);
-- request_hash: its digest, so an idempotency key reused for a different
-- request is refused instead of answered with the first result.
ALTER TABLE ledger_transactions ADD COLUMN request TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger_transactions ADD COLUMN request_hash TEXT NOT NULL DEFAULT '';
-- What revokes of a fulfillment took back so far is summed on every revoke.
CREATE INDEX ledger_transactions_reverses ON ledger_transactions (reverses);

-- One row per revoke: the record is the AGS-shaped result (items with their
-- strategy, status and reason; success and failed lists).
CREATE TABLE ledger_revocations (
    id             TEXT    PRIMARY KEY,
    player_id      TEXT    NOT NULL,
    transaction_id TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    record         TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL
);
CREATE INDEX ledger_revocations_player ON ledger_revocations (player_id, created_at);
CREATE INDEX ledger_revocations_txn ON ledger_revocations (transaction_id);
