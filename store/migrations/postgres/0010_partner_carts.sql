-- Distribution partners' carts: one per partner and player, filled and
-- changed by the partner, priced when read, emptied (items '[]') by the
-- order made from it. items is JSON: [{"sku","quantity"}] in the order
-- the partner added them. currency is '' until the partner gives one.
CREATE TABLE partner_carts (
    source     TEXT    NOT NULL,
    player_id  TEXT    NOT NULL,
    currency   TEXT    NOT NULL,
    items      TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (source, player_id)
);
