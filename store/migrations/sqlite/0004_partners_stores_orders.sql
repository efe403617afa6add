-- Orders: every order from every sender, with its current status and the
-- history of its statuses (one JSON object per line, oldest first, appended
-- by the write that causes each step). The id is the order's fulfillment
-- transaction id (xsolla.<source>.order.<id>, partner.<source>.order.<id>,
-- epic.<source>.<entitlement>, ...). Keyed by player first: support reads a
-- player's orders, and one row per order keeps a step to one write.
CREATE TABLE orders (
    player_id  TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    platform   TEXT    NOT NULL,
    order_ref  TEXT    NOT NULL DEFAULT '',
    status     TEXT    NOT NULL,
    reason     TEXT    NOT NULL DEFAULT '',
    history    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (player_id, id)
) WITHOUT ROWID;

-- Partner orders: created by a distribution partner before it charges its
-- user; the id is the order_id the partner pays. payment_id is the id of the
-- stored pay notification (inbox.id), answered to the partner.
CREATE TABLE partner_orders (
    id                      INTEGER PRIMARY KEY,
    source                  TEXT    NOT NULL,
    player_id               TEXT    NOT NULL,
    currency                TEXT    NOT NULL,
    amount                  INTEGER NOT NULL,
    amount_without_discount INTEGER NOT NULL,
    lines                   TEXT    NOT NULL,
    status                  TEXT    NOT NULL,
    payment_id              INTEGER,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
CREATE UNIQUE INDEX partner_orders_payment ON partner_orders (payment_id);

-- Fulfill Orders: the start of each player's last successful run per
-- platform; the next run asks the platform for orders changed since then.
CREATE TABLE fulfill_cursors (
    player_id  TEXT    NOT NULL,
    platform   TEXT    NOT NULL,
    since      INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (player_id, platform)
) WITHOUT ROWID;

-- Order tracking reads an order's events and commands from the inbox and the
-- outbox (see store/orders.go): each event names the order it concerns, and
-- the outbox is reachable from its events. The orders table above then holds
-- only steps no command carries (a refund recorded without claw-back, a
-- partner order created), so tracking costs the hot path no extra write.
ALTER TABLE inbox ADD COLUMN order_id TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_event ON outbox (event_id);
