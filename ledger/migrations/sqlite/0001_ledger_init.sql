-- The ledger's first tables. Databases made before the ledger kept its own
-- migrations have them from 0001_init, which then created the store's and
-- the ledger's tables alike: IF NOT EXISTS makes this a no-op there.

-- Players, wallets per currency and platform, append-only entries,
-- entitlements, and one row per applied transaction (the idempotency key).
CREATE TABLE IF NOT EXISTS ledger_players (
    player_id  TEXT    PRIMARY KEY,
    created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS ledger_wallets (
    player_id  TEXT    NOT NULL,
    currency   TEXT    NOT NULL,
    platform   TEXT    NOT NULL,
    balance    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (player_id, currency, platform)
);

CREATE TABLE IF NOT EXISTS ledger_entries (
    id              INTEGER PRIMARY KEY,
    idempotency_key TEXT    NOT NULL UNIQUE,
    player_id       TEXT    NOT NULL,
    currency        TEXT    NOT NULL,
    platform        TEXT    NOT NULL,
    amount          INTEGER NOT NULL,
    balance_after   INTEGER NOT NULL,
    reason          TEXT    NOT NULL,
    transaction_id  TEXT    NOT NULL DEFAULT '',
    source          TEXT    NOT NULL DEFAULT '',
    reverses        INTEGER REFERENCES ledger_entries (id),
    actor           TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_entries_player ON ledger_entries (player_id, id);
CREATE INDEX IF NOT EXISTS ledger_entries_txn ON ledger_entries (transaction_id);

CREATE TABLE IF NOT EXISTS ledger_entitlements (
    id             TEXT    PRIMARY KEY,
    player_id      TEXT    NOT NULL,
    item           TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    sku            TEXT    NOT NULL,
    platform       TEXT    NOT NULL,
    use_count      INTEGER NOT NULL,
    status         TEXT    NOT NULL,
    transaction_id TEXT    NOT NULL,
    granted_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_entitlements_player ON ledger_entitlements (player_id, granted_at);
CREATE INDEX IF NOT EXISTS ledger_entitlements_txn ON ledger_entitlements (transaction_id);

CREATE TABLE IF NOT EXISTS ledger_transactions (
    transaction_id TEXT    PRIMARY KEY,
    kind           TEXT    NOT NULL,
    player_id      TEXT    NOT NULL,
    reverses       TEXT    NOT NULL DEFAULT '',
    result         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);
