package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"storegate"
	"storegate/store/engine"
)

// Order tracking is read from what the gateway writes anyway: every event
// names the order it concerns (inbox.order_id), and its commands (outbox,
// reached by event_id) say whether the order was granted, revoked or failed
// and when. An order's history is "received" for each of its events and a
// step for each command that ended. Only steps that no command carries (a
// refund recorded without claw-back, a partner order created, an order
// Fulfill Orders could not process) are written, to the orders table, in the
// transaction of the event that causes them. So tracking costs a request no
// extra write, and no step is shown for what did not commit.

// step is one order note to write.
type step struct {
	note storegate.OrderNote
	// seq places the note among the steps read from the inbox and outbox
	// when times are equal (see orderedStep): its event's, 0 for none.
	seq int64
}

// storedStep is a history line of the orders table.
type storedStep struct {
	storegate.OrderStep
	Seq int64 `json:"seq,omitempty"`
}

// noteSteps are the notes newly stored events carry.
func noteSteps(reqs []*acceptReq) []step {
	var out []step
	for _, r := range reqs {
		for _, n := range r.ev.Notes {
			if n.Source == "" {
				n.Source = r.ev.Source
			}
			if n.Event == "" {
				n.Event = r.ev.Type
			}
			out = append(out, step{note: n, seq: 2 * r.eventID})
		}
	}
	return out
}

// track writes notes: each order's row is created or updated once per call,
// its history lines appended and its status set by its last note.
func track(ctx context.Context, tx *engine.Tx, steps []step) error {
	if len(steps) == 0 {
		return nil
	}
	now := tx.Now()
	type row struct {
		last    storegate.OrderNote
		history []byte
	}
	// One row per order per statement: PostgreSQL refuses an upsert that
	// touches a row twice.
	rows := map[[2]string]*row{}
	var keys [][2]string
	for _, s := range steps {
		k := [2]string{s.note.PlayerID, s.note.Order}
		r := rows[k]
		if r == nil {
			r = &row{}
			rows[k] = r
			keys = append(keys, k)
		}
		r.last = s.note
		line, err := json.Marshal(storedStep{storegate.OrderStep{Status: s.note.Status, Event: s.note.Event, Reason: truncate(s.note.Reason, 1000),
			TransactionID: s.note.TransactionID, At: now.UTC()}, s.seq})
		if err != nil {
			return err
		}
		r.history = append(append(r.history, line...), '\n')
	}
	args := make([]any, 0, 10*len(keys))
	for _, k := range keys {
		r := rows[k]
		n := r.last
		args = append(args, n.PlayerID, n.Order, n.Source, string(n.Platform), n.Ref, string(n.Status), truncate(n.Reason, 1000),
			string(r.history), now.UnixMicro(), now.UnixMicro())
	}
	if _, err := tx.Exec(ctx, `INSERT INTO orders (player_id, id, source, platform, order_ref, status, reason, history, created_at, updated_at)
		VALUES `+engine.Placeholders(10, len(keys))+` ON CONFLICT (player_id, id) DO UPDATE SET
		status = excluded.status, reason = excluded.reason, history = orders.history || excluded.history,
		updated_at = excluded.updated_at`, args...); err != nil {
		return fmt.Errorf("track orders: %w", err)
	}
	return nil
}

// TrackOrder records one step that no event or command carries (an order
// pulled from a platform that cannot be processed, a partner order created).
func (db *DB) TrackOrder(ctx context.Context, n storegate.OrderNote) error {
	return db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		return track(ctx, tx, []step{{note: n}})
	})
}

// maxOrders caps one player's order listing.
const maxOrders = 500

// PlayerOrders lists a player's orders, newest first, each with its history
// oldest step first. limit is capped at 500; 0 means 100.
func (db *DB) PlayerOrders(ctx context.Context, playerID string, limit int) ([]storegate.OrderRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, maxOrders)
	views := map[string]*orderView{}
	view := func(id string) *orderView {
		v := views[id]
		if v == nil {
			v = &orderView{rec: storegate.OrderRecord{ID: id, PlayerID: playerID, History: []storegate.OrderStep{}}}
			views[id] = v
		}
		return v
	}
	events, err := db.playerEvents(ctx, playerID, limit*eventsPerOrder)
	if err != nil {
		return nil, err
	}
	cmds, err := db.eventCommands(ctx, events)
	if err != nil {
		return nil, err
	}
	for _, e := range events {
		v := view(e.order)
		if v.rec.Source == "" {
			v.rec.Source, v.rec.Ref = e.source, e.ref
		}
		st := storegate.OrderStep{Status: storegate.OrderReceived, Event: e.typ, AnswerStatus: e.answer, At: e.at}
		// The event's command for this order, if it queued one (a second
		// event owing an already queued command queued none).
		for _, c := range cmds[e.id] {
			if storegate.OrderOf(c.cmd) != e.order || c.cmd.Kind == storegate.KindReceipt {
				continue
			}
			st.TransactionID = c.cmd.ID
			if c.cmd.Kind == storegate.KindRevoke {
				st.Reason = "claw-back queued: " + c.cmd.Reason
			}
			if v.rec.Platform == "" {
				v.rec.Platform = c.cmd.Platform
			}
			if c.cmd.OrderRef != "" {
				v.rec.Ref = c.cmd.OrderRef
			}
		}
		v.add(st, 2*e.id)
	}
	for eventID, list := range cmds {
		for _, c := range list {
			// A receipt is not a step of the order: the order is granted
			// whether or not its e-mail went out yet (the dead letters say
			// when one cannot go).
			if c.cmd.Kind == storegate.KindReceipt {
				continue
			}
			v := view(storegate.OrderOf(c.cmd))
			st := storegate.OrderStep{Event: string(c.cmd.Kind), TransactionID: c.cmd.ID, At: c.updated}
			switch {
			case c.state == storegate.StateDead || c.state == storegate.StateDiscarded:
				st.Status, st.Reason = storegate.OrderFailed, c.lastError
			case c.state != storegate.StateDone:
				v.pending = true
				continue
			case c.cmd.Kind == storegate.KindRevoke:
				st.Status, st.Reason = storegate.OrderRevoked, c.cmd.Reason
			default:
				st.Status = storegate.OrderGranted
			}
			v.add(st, 2*eventID+1)
		}
	}
	if err := db.noteRows(ctx, playerID, view); err != nil {
		return nil, err
	}
	out := make([]storegate.OrderRecord, 0, len(views))
	for _, v := range views {
		out = append(out, v.record())
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// eventsPerOrder bounds how many of a player's events a listing reads per
// order it shows.
const eventsPerOrder = 8

// orderView gathers one order's steps while a listing is built.
type orderView struct {
	rec     storegate.OrderRecord
	steps   []orderedStep
	pending bool // a command of the order is still queued
}

// orderedStep sorts by time, then by causality: an event (2·id) before the
// completion of the command it queued (2·id+1), and both before a later
// event; a note goes with its event, one without (a partner order created)
// first.
type orderedStep struct {
	step storegate.OrderStep
	seq  int64
}

func (v *orderView) add(st storegate.OrderStep, seq int64) {
	v.steps = append(v.steps, orderedStep{st, seq})
}

// record orders the steps and derives the status: "received" while a
// command is queued; otherwise the last step that is not a mere "received"
// (an event owing a command that already ran changes nothing).
func (v *orderView) record() storegate.OrderRecord {
	sort.SliceStable(v.steps, func(i, j int) bool {
		a, b := v.steps[i], v.steps[j]
		if !a.step.At.Equal(b.step.At) {
			return a.step.At.Before(b.step.At)
		}
		return a.seq < b.seq
	})
	r := v.rec
	r.Status = storegate.OrderReceived
	for _, s := range v.steps {
		r.History = append(r.History, s.step)
		if !v.pending && s.step.Status != storegate.OrderReceived {
			r.Status, r.Reason = s.step.Status, s.step.Reason
		}
		if v.pending && s.step.Status == storegate.OrderReceived {
			r.Reason = s.step.Reason
		}
	}
	if len(v.steps) > 0 {
		r.CreatedAt, r.UpdatedAt = v.steps[0].step.At, v.steps[len(v.steps)-1].step.At
	}
	return r
}

type playerEvent struct {
	id                      int64
	typ, order, source, ref string
	answer                  int
	at                      time.Time
}

// playerEvents reads the player's newest events that concern an order.
func (db *DB) playerEvents(ctx context.Context, playerID string, n int) ([]playerEvent, error) {
	rows, err := db.Query(ctx, `SELECT id, type, order_id, source, order_ref, answer_status, received_at FROM inbox
		WHERE player_id = ? AND order_id <> '' ORDER BY received_at DESC, id DESC LIMIT ?`, playerID, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []playerEvent
	for rows.Next() {
		var e playerEvent
		var at int64
		if err := rows.Scan(&e.id, &e.typ, &e.order, &e.source, &e.ref, &e.answer, &at); err != nil {
			return nil, err
		}
		e.at = time.UnixMicro(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

type queuedCommand struct {
	cmd       storegate.Command
	state     storegate.State
	lastError string
	updated   time.Time
}

// eventCommands reads the commands the events queued, by event id.
func (db *DB) eventCommands(ctx context.Context, events []playerEvent) (map[int64][]queuedCommand, error) {
	out := map[int64][]queuedCommand{}
	for start := 0; start < len(events); start += engine.MaxRows {
		chunk := events[start:min(start+engine.MaxRows, len(events))]
		args := make([]any, len(chunk))
		for i, e := range chunk {
			args[i] = e.id
		}
		rows, err := db.Query(ctx, `SELECT event_id, command, state, last_error, updated_at FROM outbox WHERE event_id IN (`+
			strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, updated int64
			var payload string
			var q queuedCommand
			if err := rows.Scan(&id, &payload, &q.state, &q.lastError, &updated); err != nil {
				rows.Close()
				return nil, err
			}
			if err := json.Unmarshal([]byte(payload), &q.cmd); err != nil {
				rows.Close()
				return nil, fmt.Errorf("decode command: %w", err)
			}
			q.updated = time.UnixMicro(updated).UTC()
			out[id] = append(out[id], q)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// noteRows adds the written notes (the orders table) to the views.
func (db *DB) noteRows(ctx context.Context, playerID string, view func(string) *orderView) error {
	rows, err := db.Query(ctx, `SELECT id, source, platform, order_ref, history FROM orders WHERE player_id = ?`, playerID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, source, platform, ref, history string
		if err := rows.Scan(&id, &source, &platform, &ref, &history); err != nil {
			return err
		}
		v := view(id)
		if v.rec.Source == "" {
			v.rec.Source = source
		}
		if v.rec.Platform == "" {
			v.rec.Platform = storegate.Platform(platform)
		}
		if v.rec.Ref == "" {
			v.rec.Ref = ref
		}
		for line := range strings.Lines(history) {
			var st storedStep
			if err := json.Unmarshal([]byte(line), &st); err != nil {
				return fmt.Errorf("order %s: history: %w", id, err)
			}
			v.add(st.OrderStep, st.Seq)
		}
	}
	return rows.Err()
}

// OrderStatuses returns the current status of each of a player's orders
// among ids that is known.
func (db *DB) OrderStatuses(ctx context.Context, playerID string, ids []string) (map[string]storegate.OrderStatus, error) {
	orders, err := db.PlayerOrders(ctx, playerID, maxOrders)
	if err != nil {
		return nil, err
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	out := make(map[string]storegate.OrderStatus, len(ids))
	for _, o := range orders {
		if want[o.ID] {
			out[o.ID] = o.Status
		}
	}
	return out, nil
}

// FulfillCursor returns when the player's last successful Fulfill Orders run
// on platform started; false when there was none.
func (db *DB) FulfillCursor(ctx context.Context, playerID string, platform storegate.Platform) (time.Time, bool, error) {
	var since int64
	err := db.QueryRow(ctx, `SELECT since FROM fulfill_cursors WHERE player_id = ? AND platform = ?`, playerID, string(platform)).Scan(&since)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	return time.UnixMicro(since).UTC(), true, nil
}

// SetFulfillCursor moves the cursor forward to since; never backwards, so
// a slow run finishing after a faster later one cannot rewind it.
func (db *DB) SetFulfillCursor(ctx context.Context, playerID string, platform storegate.Platform, since time.Time) error {
	return db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO fulfill_cursors (player_id, platform, since, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (player_id, platform) DO UPDATE SET
				since = CASE WHEN excluded.since > fulfill_cursors.since THEN excluded.since ELSE fulfill_cursors.since END,
				updated_at = excluded.updated_at`,
			playerID, string(platform), since.UnixMicro(), tx.Now().UnixMicro())
		return err
	})
}
