-- Pools of game keys, one per game_key SKU, imported by support. A key is
-- available until a grant takes it (assigned: to the entitlement that
-- carries it), and revoked when that grant is taken back; only an
-- available key is ever handed out, so no key goes to two buyers.
CREATE TABLE ledger_keys (
    id             INTEGER PRIMARY KEY,
    sku            TEXT    NOT NULL,
    code           TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    entitlement_id TEXT,
    player_id      TEXT,
    transaction_id TEXT,
    imported_at    INTEGER NOT NULL,
    assigned_at    INTEGER,
    revoked_at     INTEGER
);

-- A key is in one pool once: importing it again (or into another pool) is
-- a duplicate.
CREATE UNIQUE INDEX ledger_keys_code ON ledger_keys (code);
-- One key per entitlement: a grant applied twice cannot take two.
CREATE UNIQUE INDEX ledger_keys_entitlement ON ledger_keys (entitlement_id);
CREATE INDEX ledger_keys_pool ON ledger_keys (sku, status, id);
CREATE INDEX ledger_keys_player ON ledger_keys (player_id);
CREATE INDEX ledger_keys_transaction ON ledger_keys (transaction_id);
