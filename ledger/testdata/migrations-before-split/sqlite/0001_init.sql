-- Inbox: one row per accepted event; (source, key) makes a duplicate impossible.
CREATE TABLE inbox (
    id            INTEGER PRIMARY KEY,
    source        TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    type          TEXT    NOT NULL,
    player_id     TEXT    NOT NULL DEFAULT '',
    order_ref     TEXT    NOT NULL DEFAULT '',
    body          BLOB    NOT NULL,
    answer_status INTEGER NOT NULL,
    answer_body   BLOB,
    received_at   INTEGER NOT NULL,
    UNIQUE (source, key)
);
CREATE INDEX inbox_player ON inbox (player_id, received_at);

-- Outbox: one row per command owed to a target; the id is the command's
-- deterministic transaction id, so a command can never be queued twice.
CREATE TABLE outbox (
    id          TEXT    PRIMARY KEY,
    event_id    INTEGER NOT NULL REFERENCES inbox (id),
    kind        TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    player_id   TEXT    NOT NULL,
    command     TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    lease_owner TEXT    NOT NULL DEFAULT '',
    lease_until INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
-- One index serves the claim (state = 'pending' ORDER BY next_at), the depth
-- count and dead-letter listings.
CREATE INDEX outbox_state ON outbox (state, next_at);

-- Attempts: every delivery attempt, for dead-letter inspection.
CREATE TABLE attempts (
    id          INTEGER PRIMARY KEY,
    command_id  TEXT    NOT NULL REFERENCES outbox (id),
    n           INTEGER NOT NULL,
    verdict     TEXT    NOT NULL,
    http_status INTEGER NOT NULL DEFAULT 0,
    code        TEXT    NOT NULL DEFAULT '',
    message     TEXT    NOT NULL DEFAULT '',
    started_at  INTEGER NOT NULL,
    duration_us INTEGER NOT NULL
);
CREATE INDEX attempts_command ON attempts (command_id, n);

-- Links: Xsolla order id -> our transaction id (transaction-ID linking).
CREATE TABLE links (
    source            TEXT    NOT NULL,
    order_id          TEXT    NOT NULL,
    transaction_id    TEXT    NOT NULL,
    answer            BLOB    NOT NULL,
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (source, order_id)
);

-- Ledger: players, wallets per currency and platform, append-only entries,
-- entitlements, and one row per applied transaction (the idempotency key).
CREATE TABLE ledger_players (
    player_id  TEXT    PRIMARY KEY,
    created_at INTEGER NOT NULL
);

CREATE TABLE ledger_wallets (
    player_id  TEXT    NOT NULL,
    currency   TEXT    NOT NULL,
    platform   TEXT    NOT NULL,
    balance    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (player_id, currency, platform)
);

CREATE TABLE ledger_entries (
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
CREATE INDEX ledger_entries_player ON ledger_entries (player_id, id);
CREATE INDEX ledger_entries_txn ON ledger_entries (transaction_id);

CREATE TABLE ledger_entitlements (
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
CREATE INDEX ledger_entitlements_player ON ledger_entitlements (player_id, granted_at);
CREATE INDEX ledger_entitlements_txn ON ledger_entitlements (transaction_id);

CREATE TABLE ledger_transactions (
    transaction_id TEXT    PRIMARY KEY,
    kind           TEXT    NOT NULL,
    player_id      TEXT    NOT NULL,
    reverses       TEXT    NOT NULL DEFAULT '',
    result         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);
