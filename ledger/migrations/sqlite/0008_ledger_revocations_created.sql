-- The revocation history across players (GET /admin/v1/revocations) reads
-- the newest first; revokes are few beside fulfillments, so the index costs
-- little.
CREATE INDEX ledger_revocations_created ON ledger_revocations (created_at, id);
