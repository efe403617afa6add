-- Each target's lane claims its own due commands (see claimSQL), so one
-- target's backlog is never walked by another's claims.
CREATE INDEX outbox_target_due ON outbox (target, next_at) WHERE state = 'pending';
