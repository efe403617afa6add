-- Commands delivered in the transaction that accepts them (see
-- store/inline.go) must not overtake a command of the same player still
-- pending: this index finds one with a probe per player, and costs nothing
-- for rows that are done or dead.
CREATE INDEX outbox_pending_player ON outbox (player_id) WHERE state = 'pending';
