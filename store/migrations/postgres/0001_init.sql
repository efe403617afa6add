-- Inbox: one row per accepted event; (source, key) makes a duplicate impossible.
CREATE TABLE inbox (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    type          TEXT    NOT NULL,
    player_id     TEXT    NOT NULL DEFAULT '',
    order_ref     TEXT    NOT NULL DEFAULT '',
    body          BYTEA    NOT NULL,
    answer_status BIGINT NOT NULL,
    answer_body   BYTEA,
    received_at   BIGINT NOT NULL,
    UNIQUE (source, key)
);
CREATE INDEX inbox_player ON inbox (player_id, received_at);

-- Outbox: one row per command owed to a target; the id is the command's
-- deterministic transaction id, so a command can never be queued twice.
CREATE TABLE outbox (
    id          TEXT    PRIMARY KEY,
    -- seq orders commands as they were queued (SQLite uses its rowid).
    seq         BIGINT  GENERATED ALWAYS AS IDENTITY,
    event_id    BIGINT NOT NULL REFERENCES inbox (id),
    kind        TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    player_id   TEXT    NOT NULL,
    command     TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    next_at     BIGINT NOT NULL,
    lease_owner TEXT    NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT    NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
-- One index serves the claim (state = 'pending' ORDER BY next_at), the depth
-- count and dead-letter listings.
CREATE INDEX outbox_state ON outbox (state, next_at);

-- Attempts: every delivery attempt, for dead-letter inspection.
CREATE TABLE attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command_id  TEXT    NOT NULL REFERENCES outbox (id),
    n           BIGINT NOT NULL,
    verdict     TEXT    NOT NULL,
    http_status BIGINT NOT NULL DEFAULT 0,
    code        TEXT    NOT NULL DEFAULT '',
    message     TEXT    NOT NULL DEFAULT '',
    started_at  BIGINT NOT NULL,
    duration_us BIGINT NOT NULL
);
CREATE INDEX attempts_command ON attempts (command_id, n);

-- Links: Xsolla order id -> our transaction id (transaction-ID linking).
CREATE TABLE links (
    source            TEXT    NOT NULL,
    order_id          TEXT    NOT NULL,
    transaction_id    TEXT    NOT NULL,
    answer            BYTEA    NOT NULL,
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (source, order_id)
);
