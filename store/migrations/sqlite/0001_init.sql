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
