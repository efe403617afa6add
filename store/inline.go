package store

import (
	"context"
	"errors"
	"fmt"

	"storegate"
)

// Inline delivers commands inside the transaction that accepts them, for a
// target whose effects live in this database (the embedded ledger): the
// event, the grant and the command marked done then commit together, and a
// grant costs no claim, no lease and no second commit.
type Inline interface {
	// TakesInline reports whether c's target can apply it inside the
	// store's transaction at all (false for a remote target). A command it
	// does not take is queued for the dispatcher without being offered,
	// and its player's later commands are queued behind it.
	TakesInline(c storegate.Command) bool
	// DeliverInline applies c inside tx and reports whether it is done. It
	// may write and then report false: the store undoes what it wrote and
	// queues c for the dispatcher, which retries or dead-letters it as
	// usual. It must not keep state outside tx that it relies on later,
	// except through tx.OnCommit.
	DeliverInline(ctx context.Context, tx *Tx, c storegate.Command) bool
}

// InlineMany is an Inline that also applies many fulfillments at once, all
// or none (false: the store undoes them all). A batch of accepts hands it
// every fulfillment it takes, so the ledger writes them with a few multi-row
// statements instead of a few statements each.
type InlineMany interface {
	DeliverInlineMany(ctx context.Context, tx *Tx, cs []storegate.Command) bool
}

// DeliverOnAccept makes Accept offer new commands to in. It is set once,
// before the first Accept (the dispatcher that implements it is built on
// the DB). Only SQLite uses it: its single writer sees every command a
// player has queued, so a new one is applied only when none of that
// player's is still pending and the order of a player's commands (a grant
// before its revoke) holds. PostgreSQL's committers and replicas cannot see
// each other's uncommitted rows, so there commands always go through the
// outbox.
func (db *DB) DeliverOnAccept(in Inline) {
	if db.dialect == SQLite {
		db.inline.Store(&in)
	}
}

// errInlineNotDone makes a batch of accepts start over one by one.
var errInlineNotDone = errors.New("store: a command was not done inline")

// deliverInline offers rows, in order, to the Inline and marks those it
// did. A command is not offered when its id is already queued (it is the
// same command, kept as first queued), when its player has a command still
// pending, here or earlier in rows (it would overtake it), or when the
// Inline does not take it. The fulfillments of a batch (alone false) run
// without a savepoint, together (InlineMany) up to the next command that
// runs alone: one not done fails the call with errInlineNotDone and the
// caller undoes everything, which a grant practically never causes.
// Any other command, a revoke that may have to wait for its grant, runs
// under its own savepoint, and one not done is undone and queued.
func (db *DB) deliverInline(ctx context.Context, tx *Tx, rows []outboxRow, alone bool) error {
	p := db.inline.Load()
	if p == nil || len(rows) == 0 {
		return nil
	}
	in := *p
	queued, waiting, err := outboxState(ctx, tx, rows)
	if err != nil {
		return err
	}
	// Fulfillments of a batch wait here to go to the Inline together, up to
	// the next command that must run alone (so commands keep their order).
	var grants []int
	flush := func() error {
		if len(grants) == 0 {
			return nil
		}
		if !offerAll(ctx, in, tx, rows, grants) {
			return errInlineNotDone
		}
		for _, i := range grants {
			rows[i].done = true
		}
		grants = grants[:0]
		return nil
	}
	for i := range rows {
		c := rows[i].cmd
		if queued[c.ID] {
			continue
		}
		queued[c.ID] = true // a second copy in rows is the same command
		if waiting[c.PlayerID] {
			continue
		}
		if !takes(in, c) {
			waiting[c.PlayerID] = true
			continue
		}
		if !alone && c.Kind == storegate.KindFulfill {
			grants = append(grants, i)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		err := tx.Savepoint(ctx, func() error {
			if !offer(ctx, in, tx, c) {
				return errInlineNotDone
			}
			return nil
		})
		switch {
		case err == nil:
			rows[i].done = true
		case errors.Is(err, errInlineNotDone):
			waiting[c.PlayerID] = true
		default:
			return err
		}
	}
	return flush()
}

// offerAll offers the commands rows[at...] to in, at once when it is an
// InlineMany, and reports whether all of them were done.
func offerAll(ctx context.Context, in Inline, tx *Tx, rows []outboxRow, at []int) (done bool) {
	many, ok := in.(InlineMany)
	if !ok {
		for _, i := range at {
			if !offer(ctx, in, tx, rows[i].cmd) {
				return false
			}
		}
		return true
	}
	defer func() {
		if recover() != nil {
			done = false
		}
	}()
	cs := make([]storegate.Command, len(at))
	for k, i := range at {
		cs[k] = rows[i].cmd
	}
	return many.DeliverInlineMany(ctx, tx, cs)
}

// takes and offer call the Inline; a panic is a command not taken or not
// done (the batch path runs on the committer, outside any job's recover).
func takes(in Inline, c storegate.Command) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return in.TakesInline(c)
}

func offer(ctx context.Context, in Inline, tx *Tx, c storegate.Command) (done bool) {
	defer func() {
		if recover() != nil {
			done = false
		}
	}()
	return in.DeliverInline(ctx, tx, c)
}

// outboxState reads which of rows' command ids are queued already and
// which of their players have a command pending.
func outboxState(ctx context.Context, tx *Tx, rows []outboxRow) (queued, waiting map[string]bool, err error) {
	queued, waiting = map[string]bool{}, map[string]bool{}
	ids, players := make([]any, 0, len(rows)), make([]any, 0, len(rows))
	seen := map[string]bool{}
	for _, r := range rows {
		ids = append(ids, r.cmd.ID)
		if !seen[r.cmd.PlayerID] {
			seen[r.cmd.PlayerID] = true
			players = append(players, r.cmd.PlayerID)
		}
	}
	if err := collect(ctx, tx, `SELECT column1 FROM (VALUES %s) WHERE column1 IN (SELECT id FROM outbox)`, ids, queued); err != nil {
		return nil, nil, fmt.Errorf("read queued commands: %w", err)
	}
	// One probe of outbox_pending_player per player, however many commands
	// it has pending (a DISTINCT over them walked them all: 2.5 times the
	// cost of an accept with a remote target's backlog).
	if err := collect(ctx, tx, `SELECT column1 FROM (VALUES %s) p WHERE EXISTS
		(SELECT 1 FROM outbox WHERE state = 'pending' AND player_id = p.column1)`, players, waiting); err != nil {
		return nil, nil, fmt.Errorf("read pending players: %w", err)
	}
	return queued, waiting, nil
}

// collect runs query with its %s replaced by a VALUES list of args,
// MaxRows at a time, and adds the single column it returns to into.
func collect(ctx context.Context, tx *Tx, query string, args []any, into map[string]bool) error {
	for start := 0; start < len(args); start += MaxRows {
		chunk := args[start:min(start+MaxRows, len(args))]
		rows, err := tx.Query(ctx, fmt.Sprintf(query, Placeholders(1, len(chunk))), chunk...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return err
			}
			into[s] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}
