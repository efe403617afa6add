-- What the ledger tells Xsolla about a player in user_validation
-- (user_attributes): a JSON object set by support through the admin API.
CREATE TABLE ledger_player_attributes (
    player_id  TEXT    PRIMARY KEY,
    attributes TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
