package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"storegate"
	"storegate/store/engine"
)

// Applier applies commands inside the store's transaction: a target whose
// effects live in this database (the embedded ledger). The store calls it
// for the commands it accepts (on SQLite), and the dispatcher for those it
// claims, so the effect and the command's "done" commit together.
type Applier interface {
	// Takes reports whether c can be applied inside a transaction at all
	// (false for one that needs a network call). A command it does not take
	// is queued for the dispatcher without being offered, and its player's
	// later commands are queued behind it.
	Takes(c storegate.Command) bool
	// Apply applies cs inside tx, in order, all or none: for any outcome
	// but done the caller undoes what it wrote. It must not keep state
	// outside tx that it relies on later, except through tx.OnCommit.
	Apply(ctx context.Context, tx *engine.Tx, cs []storegate.Command) storegate.Outcome
}

// Takes asks a whether it takes c; a panic is a command not taken.
func Takes(a Applier, c storegate.Command) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return a.Takes(c)
}

// Apply applies cs through a; a panic is a retry. Applying runs on the
// committer or inside a shared write, outside any caller's recover, and a
// command that panics every time must cost an attempt, not fail the shared
// write at every claim.
func Apply(ctx context.Context, a Applier, tx *engine.Tx, cs []storegate.Command) (out storegate.Outcome) {
	defer func() {
		if r := recover(); r != nil {
			out = storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "PANIC", Message: fmt.Sprint(r)}
		}
	}()
	return a.Apply(ctx, tx, cs)
}

// ApplyOnAccept makes Accept offer target's new commands to a. It is set
// once, before the first Accept. Only SQLite uses it: its single writer
// sees every command a player has queued, so a new one is applied only when
// none of that player's is still pending and the order of a player's
// commands (a grant before its revoke) holds. PostgreSQL's committers and
// replicas cannot see each other's uncommitted rows, so there commands
// always go through the outbox.
func (db *DB) ApplyOnAccept(target string, a Applier) {
	if db.Dialect() == engine.SQLite {
		db.applier.Store(&applier{target: target, a: a})
	}
}

// applier is the target whose commands apply on accept.
type applier struct {
	target string
	a      Applier
}

func (ap *applier) takes(c storegate.Command) bool { return c.Target == ap.target && Takes(ap.a, c) }

// errInlineNotDone makes a batch of accepts start over one by one.
var errInlineNotDone = errors.New("store: a command was not done inline")

// deliverInline offers rows, in order, to the Applier and marks those it
// did. A command is not offered when its id is already queued (it is the
// same command, kept as first queued), when its player has a command still
// pending, here or earlier in rows (it would overtake it), or when the
// Applier does not take it. The fulfillments of a batch (alone false) run
// without a savepoint, together up to the next command that runs alone: one not done fails the call with errInlineNotDone and the
// caller undoes everything, which a grant practically never causes.
// Any other command, a revoke that may have to wait for its grant, runs
// under its own savepoint, and one not done is undone and queued.
func (db *DB) deliverInline(ctx context.Context, tx *engine.Tx, rows []outboxRow, alone bool) error {
	ap := db.applier.Load()
	if ap == nil || len(rows) == 0 {
		return nil
	}
	queued, waiting, err := outboxState(ctx, tx, rows)
	if err != nil {
		return err
	}
	// Fulfillments of a batch wait here to go to the Applier together, up to
	// the next command that must run alone (so commands keep their order).
	var grants []int
	flush := func() error {
		if len(grants) == 0 {
			return nil
		}
		cs := make([]storegate.Command, len(grants))
		for k, i := range grants {
			cs[k] = rows[i].cmd
		}
		if !db.apply(ctx, ap, tx, cs) {
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
		if !ap.takes(c) {
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
			if !db.apply(ctx, ap, tx, []storegate.Command{c}) {
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

// apply applies cs and, once they commit, counts them as delivered, each
// with its share of the time.
func (db *DB) apply(ctx context.Context, ap *applier, tx *engine.Tx, cs []storegate.Command) bool {
	started := db.Now()
	if Apply(ctx, ap.a, tx, cs).Verdict != storegate.VerdictDone {
		return false
	}
	if obs := db.obs; obs != nil {
		share := db.Now().Sub(started) / time.Duration(len(cs))
		n, target := len(cs), ap.target
		tx.OnCommit(func() {
			for range n {
				obs.Delivered(target, storegate.VerdictDone, share)
			}
		})
	}
	return true
}

// outboxState reads which of rows' command ids are queued already and
// which of their players have a command pending.
func outboxState(ctx context.Context, tx *engine.Tx, rows []outboxRow) (queued, waiting map[string]bool, err error) {
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
	// A pending receipt does not count: it changes nothing a later
	// command of the player does, and would send each purchase a buyer
	// makes while a receipt is on its way down the slow path.
	if err := collect(ctx, tx, `SELECT column1 FROM (VALUES %s) p WHERE EXISTS
		(SELECT 1 FROM outbox WHERE state = 'pending' AND player_id = p.column1 AND kind <> 'receipt')`, players, waiting); err != nil {
		return nil, nil, fmt.Errorf("read pending players: %w", err)
	}
	return queued, waiting, nil
}

// collect runs query with its %s replaced by a VALUES list of args,
// engine.MaxRows at a time, and adds the single column it returns to into.
func collect(ctx context.Context, tx *engine.Tx, query string, args []any, into map[string]bool) error {
	for start := 0; start < len(args); start += engine.MaxRows {
		chunk := args[start:min(start+engine.MaxRows, len(args))]
		rows, err := tx.Query(ctx, fmt.Sprintf(query, engine.Placeholders(1, len(chunk))), chunk...)
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
