package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"storegate"
)

// Inline delivers commands inside the transaction that accepts them, for a
// target whose effects live in this database (the embedded ledger): the
// event, the grant and the command marked done then commit together, and a
// grant costs no claim, no lease and no second commit.
type Inline interface {
	// DeliverInline applies c inside tx and reports whether it is done. It
	// may write and then report false: the store undoes what it wrote and
	// queues c for the dispatcher, which retries or dead-letters it as
	// usual. It must not keep state outside tx that it relies on later,
	// except through tx.OnCommit.
	DeliverInline(ctx context.Context, tx *Tx, c storegate.Command) bool
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
		db.inline = in
	}
}

// errInlineNotDone makes a batch of accepts start over one by one.
var errInlineNotDone = errors.New("store: a command was not done inline")

// deliverInline offers rows, in order, to the Inline and marks those it
// did. A command is not offered when its id is already queued (it is the
// same command, kept as first queued) or when its player has a command
// still pending, here or earlier in rows (it would overtake it). With
// alone, each command runs under its own savepoint and one not done is
// undone and queued; otherwise the first not done fails the call with
// errInlineNotDone and the caller undoes everything.
func (db *DB) deliverInline(ctx context.Context, tx *Tx, rows []outboxRow, alone bool) error {
	if db.inline == nil || len(rows) == 0 {
		return nil
	}
	queued, waiting, err := outboxState(ctx, tx, rows)
	if err != nil {
		return err
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
		if !alone {
			if !db.inline.DeliverInline(ctx, tx, c) {
				return errInlineNotDone
			}
			rows[i].done = true
			continue
		}
		err := tx.Savepoint(ctx, func() error {
			if !db.inline.DeliverInline(ctx, tx, c) {
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
	return nil
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
	if err := collect(ctx, tx, `SELECT id FROM outbox WHERE id IN `, ids, queued); err != nil {
		return nil, nil, fmt.Errorf("read queued commands: %w", err)
	}
	// outbox_pending_player makes this a probe per player, however long
	// the queue of some target is.
	if err := collect(ctx, tx, `SELECT DISTINCT player_id FROM outbox WHERE state = 'pending' AND player_id IN `, players, waiting); err != nil {
		return nil, nil, fmt.Errorf("read pending players: %w", err)
	}
	return queued, waiting, nil
}

// collect runs query with an "IN (...)" list of args, maxRows at a time,
// and adds the single column it returns to into.
func collect(ctx context.Context, tx *Tx, query string, args []any, into map[string]bool) error {
	for start := 0; start < len(args); start += maxRows {
		chunk := args[start:min(start+maxRows, len(args))]
		rows, err := tx.Query(ctx, query+"("+strings.Repeat("?, ", len(chunk)-1)+"?)", chunk...)
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
