package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"storegate"
	"storegate/store/engine"
)

// Accept stores an event, the commands it owes and the answer it gets, in one
// transaction. The inbox's unique (source, key) makes concurrent copies of one
// event race-free: exactly one inserts; every other copy writes nothing and
// gets the first copy's answer back with duplicate true.
func (db *DB) Accept(ctx context.Context, ev storegate.Event, cmds []storegate.Command, answer storegate.Answer) (stored storegate.Answer, duplicate bool, err error) {
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = db.Now()
	}
	r := &acceptReq{ev: ev, cmds: cmds, answer: answer}
	err = db.accepts.Write(ctx, db.DB, r, func(ctx context.Context, tx *engine.Tx) error { return db.acceptOne(ctx, tx, r) })
	return r.stored, r.dup, err
}

// acceptReq is one Accept in the committer's hands. The results are written
// by the committer and read by the caller after the commit.
type acceptReq struct {
	ev      storegate.Event
	cmds    []storegate.Command
	answer  storegate.Answer
	stored  storegate.Answer
	dup     bool
	eventID int64
}

const inboxColumns = `(source, key, type, player_id, order_ref, order_id, body, answer_status, answer_body, received_at)`

func (r *acceptReq) args() []any {
	return []any{r.ev.Source, r.ev.Key, r.ev.Type, r.ev.PlayerID, r.ev.OrderRef, eventOrder(r.ev, r.cmds), r.ev.Body,
		r.answer.Status, r.answer.Body, r.ev.ReceivedAt.UnixMicro()}
}

// eventOrder is the order an event's commands concern, for order tracking
// ("" for an event that owes none: its notes, if any, speak for it).
func eventOrder(ev storegate.Event, cmds []storegate.Command) string {
	if len(cmds) > 0 {
		return storegate.OrderOf(cmds[0])
	}
	return ""
}

// acceptOne writes a single accept.
func (db *DB) acceptOne(ctx context.Context, tx *engine.Tx, r *acceptReq) error {
	inserted, err := r.insertEvent(ctx, tx)
	if err != nil || !inserted {
		return err
	}
	return db.queue(ctx, tx, r)
}

// insertEvent inserts the event, reporting false (with the stored answer
// loaded) when its key was stored before.
func (r *acceptReq) insertEvent(ctx context.Context, tx *engine.Tx) (bool, error) {
	r.stored, r.dup, r.eventID = storegate.Answer{}, false, 0
	err := tx.QueryRow(ctx, `INSERT INTO inbox `+inboxColumns+` VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (source, key) DO NOTHING RETURNING id`, r.args()...).Scan(&r.eventID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, r.loadDuplicate(ctx, tx)
	}
	if err != nil {
		return false, fmt.Errorf("insert event: %w", err)
	}
	r.stored = r.answer
	return true, nil
}

// queue inserts the event's commands and its order notes.
func (db *DB) queue(ctx context.Context, tx *engine.Tx, r *acceptReq) error {
	rows := make([]outboxRow, len(r.cmds))
	for i, c := range r.cmds {
		rows[i] = outboxRow{eventID: r.eventID, cmd: c}
	}
	if err := db.deliverInline(ctx, tx, rows, true); err != nil {
		return err
	}
	if err := insertCommands(ctx, tx, rows); err != nil {
		return err
	}
	return track(ctx, tx, noteSteps([]*acceptReq{r}))
}

func (r *acceptReq) loadDuplicate(ctx context.Context, tx *engine.Tx) error {
	r.dup = true
	return tx.QueryRow(ctx, `SELECT id, answer_status, answer_body FROM inbox WHERE source = ? AND key = ?`,
		r.ev.Source, r.ev.Key).Scan(&r.eventID, &r.stored.Status, &r.stored.Body)
}

// acceptMany writes many accepts with multi-row statements: the inbox's
// bulk kind of write (see engine.Bulk). If it fails, each accept runs alone.
func (db *DB) acceptMany(ctx context.Context, tx *engine.Tx, reqs []*acceptReq) error {
	// The events go in in key order, not arrival order. On PostgreSQL two
	// replicas (or committers) handed copies of the same events, in
	// different orders, would otherwise each take a key the other then
	// waits for: a deadlock, and the losing batch runs again one accept at
	// a time. In one order, one batch waits for the other instead.
	byKey := slices.SortedStableFunc(slices.Values(reqs), func(a, b *acceptReq) int {
		return cmp.Or(cmp.Compare(a.ev.Source, b.ev.Source), cmp.Compare(a.ev.Key, b.ev.Key))
	})
	inserted := map[[2]string]int64{}
	for start := 0; start < len(byKey); start += engine.MaxRows {
		chunk := byKey[start:min(start+engine.MaxRows, len(byKey))]
		args := make([]any, 0, 10*len(chunk))
		for _, r := range chunk {
			args = append(args, r.args()...)
		}
		rows, err := tx.Query(ctx, `INSERT INTO inbox `+inboxColumns+` VALUES `+engine.Placeholders(10, len(chunk))+`
			ON CONFLICT (source, key) DO NOTHING RETURNING id, source, key`, args...)
		if err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		for rows.Next() {
			var id int64
			var k [2]string
			if err := rows.Scan(&id, &k[0], &k[1]); err != nil {
				rows.Close()
				return err
			}
			inserted[k] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	// The first request carrying a key inserted it (rows are inserted in
	// order); later copies in the batch are its duplicates; keys not
	// inserted at all were stored before this batch.
	first := map[[2]string]*acceptReq{}
	var stored []*acceptReq
	var cmds []outboxRow
	for _, r := range reqs {
		k := [2]string{r.ev.Source, r.ev.Key}
		r.stored, r.dup, r.eventID = storegate.Answer{}, false, 0
		switch id, ok := inserted[k]; {
		case ok && first[k] == nil:
			first[k] = r
			stored = append(stored, r)
			r.stored, r.eventID = r.answer, id
			for _, c := range r.cmds {
				cmds = append(cmds, outboxRow{eventID: id, cmd: c})
			}
		case ok:
			r.dup, r.stored, r.eventID = true, first[k].answer, first[k].eventID
		default:
			if err := r.loadDuplicate(ctx, tx); err != nil {
				return err
			}
		}
	}
	// A command not done inline fails the batch: each accept then runs
	// alone, with a savepoint per command.
	if err := db.deliverInline(ctx, tx, cmds, false); err != nil {
		return err
	}
	if err := insertCommands(ctx, tx, cmds); err != nil {
		return err
	}
	return track(ctx, tx, noteSteps(stored))
}

type outboxRow struct {
	eventID int64
	cmd     storegate.Command
	// done: delivered inline (see Inline), stored as done after one attempt.
	done bool
}

// insertCommands queues commands, engine.MaxRows per statement. A command id
// already queued (the same order revoked by two events) is the same command:
// the first is kept.
func insertCommands(ctx context.Context, tx *engine.Tx, rows []outboxRow) error {
	now := tx.Now().UnixMicro()
	for start := 0; start < len(rows); start += engine.MaxRows {
		chunk := rows[start:min(start+engine.MaxRows, len(rows))]
		args := make([]any, 0, 11*len(chunk))
		for _, r := range chunk {
			c := r.cmd
			if c.CreatedAt.IsZero() {
				c.CreatedAt = tx.Now()
			}
			payload, err := json.Marshal(c)
			if err != nil {
				return fmt.Errorf("encode command: %w", err)
			}
			state, attempts := storegate.StatePending, 0
			if r.done {
				state, attempts = storegate.StateDone, 1
			}
			args = append(args, c.ID, r.eventID, string(c.Kind), c.Target, c.PlayerID, string(payload), string(state), attempts, now, now, now)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO outbox (id, event_id, kind, target, player_id, command, state, attempts, next_at, created_at, updated_at)
			VALUES `+engine.Placeholders(11, len(chunk))+` ON CONFLICT (id) DO NOTHING`, args...); err != nil {
			return fmt.Errorf("insert commands: %w", err)
		}
	}
	return nil
}

// Link records that a sender's order maps to one of our transaction ids, with
// the answer given. The first link for (source, orderID) wins: a repeat gets
// the stored answer back.
func (db *DB) Link(ctx context.Context, source, orderID, transactionID string, answer []byte) ([]byte, error) {
	var stored []byte
	err := db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO links (source, order_id, transaction_id, answer, created_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, order_id) DO NOTHING`,
			source, orderID, transactionID, answer, tx.Now().UnixMicro())
		if err != nil {
			return fmt.Errorf("insert link: %w", err)
		}
		return tx.QueryRow(ctx, `SELECT answer FROM links WHERE source = ? AND order_id = ?`, source, orderID).Scan(&stored)
	})
	if err != nil {
		return nil, err // stored may still be filled by a write given up on
	}
	return stored, nil
}

// EventCount counts stored events, by source when source is not empty. Tests
// and operators use it to check that rejected input left nothing behind.
func (db *DB) EventCount(ctx context.Context, source string) (int, error) {
	var n int
	q, args := "SELECT COUNT(*) FROM inbox", []any{}
	if source != "" {
		q, args = q+" WHERE source = ?", append(args, source)
	}
	err := db.QueryRow(ctx, q, args...).Scan(&n)
	return n, err
}
