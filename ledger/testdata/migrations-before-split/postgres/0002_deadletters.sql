-- Dead letters. A replay puts a dead command back to pending with its
-- attempts reset; replays counts the replays, and each attempt records the
-- replay it belongs to, so inspection shows every round apart.
ALTER TABLE outbox ADD COLUMN replays BIGINT NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN replay BIGINT NOT NULL DEFAULT 0;

-- Who replayed or discarded a dead letter, when and why.
CREATE TABLE deadletter_actions (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command_id TEXT    NOT NULL REFERENCES outbox (id),
    action     TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    reason     TEXT    NOT NULL DEFAULT '',
    at         BIGINT  NOT NULL
);
CREATE INDEX deadletter_actions_command ON deadletter_actions (command_id, id);
