package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"storegate"
)

// Order tracking is written by the store itself, in the transaction that
// causes each step: Accept records "received" for every order an event's
// commands touch (plus the event's own notes), and Complete records
// "granted", "revoked" or "failed" when a command ends. Senders' handlers
// therefore need no tracking code of their own, and a step can never be
// recorded for an event or an outcome that did not commit.

// step is one order note to write. setStatus is false for a note that
// only adds history: its command was already queued by an earlier event
// (a refund and a cancel of one order), so its outcome is already known.
type step struct {
	note      storegate.OrderNote
	setStatus bool
}

// acceptedSteps are the steps that newly stored events owe: one per order
// per event, the event's own notes included.
func acceptedSteps(reqs []*acceptReq, queued map[string]bool) []step {
	var out []step
	for _, r := range reqs {
		seen := map[string]int{}
		for _, c := range r.cmds {
			order := storegate.OrderOf(c)
			if i, ok := seen[order]; ok {
				out[i].setStatus = out[i].setStatus || queued[c.ID]
				continue
			}
			seen[order] = len(out)
			ref := c.OrderRef
			if ref == "" {
				ref = r.ev.OrderRef
			}
			reason := ""
			if c.Kind == storegate.KindRevoke {
				reason = "claw-back queued: " + c.Reason
			}
			out = append(out, step{note: storegate.OrderNote{Order: order, Source: c.Source, PlayerID: c.PlayerID,
				Platform: c.Platform, Ref: ref, Status: storegate.OrderReceived, Event: r.ev.Type, Reason: reason,
				TransactionID: c.ID}, setStatus: queued[c.ID]})
		}
		for _, n := range r.ev.Notes {
			if n.Source == "" {
				n.Source = r.ev.Source
			}
			if n.Event == "" {
				n.Event = r.ev.Type
			}
			out = append(out, step{note: n, setStatus: true})
		}
	}
	return out
}

// trackCompletion records the end of a command: granted or revoked when it
// took effect, failed (with the target's answer) when it became a dead letter.
func trackCompletion(ctx context.Context, tx *Tx, c Completion) error {
	if c.State != storegate.StateDone && c.State != storegate.StateDead {
		return nil
	}
	var cmd storegate.Command
	if c.Command != nil {
		cmd = *c.Command
	} else {
		var payload string
		if err := tx.QueryRow(ctx, `SELECT command FROM outbox WHERE id = ?`, c.ID).Scan(&payload); err != nil {
			return fmt.Errorf("track %s: %w", c.ID, err)
		}
		if err := json.Unmarshal([]byte(payload), &cmd); err != nil {
			return fmt.Errorf("track %s: decode command: %w", c.ID, err)
		}
	}
	n := storegate.OrderNote{Order: storegate.OrderOf(cmd), Source: cmd.Source, PlayerID: cmd.PlayerID, Platform: cmd.Platform,
		Ref: cmd.OrderRef, Event: string(cmd.Kind), TransactionID: cmd.ID}
	switch {
	case c.State == storegate.StateDead:
		n.Status, n.Reason = storegate.OrderFailed, describe(c.Outcome)
	case cmd.Kind == storegate.KindRevoke:
		n.Status, n.Reason = storegate.OrderRevoked, cmd.Reason
	default:
		n.Status = storegate.OrderGranted
	}
	return track(ctx, tx, []step{{note: n, setStatus: true}})
}

// track writes steps: each order's row is created or updated once per
// call, its history lines appended and, when a step sets it, its status.
func track(ctx context.Context, tx *Tx, steps []step) error {
	if len(steps) == 0 {
		return nil
	}
	now := tx.Now()
	type row struct {
		last      storegate.OrderNote // the step that gives the row its state
		setStatus bool
		history   []byte
	}
	// One row per order per statement: PostgreSQL refuses an upsert that
	// touches a row twice.
	rows := map[[2]string]*row{}
	var keys [][2]string
	for _, s := range steps {
		k := [2]string{s.note.PlayerID, s.note.Order}
		r := rows[k]
		if r == nil {
			r = &row{last: s.note}
			rows[k] = r
			keys = append(keys, k)
		}
		if s.setStatus {
			r.last, r.setStatus = s.note, true
		}
		line, err := json.Marshal(storegate.OrderStep{Status: s.note.Status, Event: s.note.Event, Reason: truncate(s.note.Reason, 1000),
			TransactionID: s.note.TransactionID, At: now.UTC()})
		if err != nil {
			return err
		}
		r.history = append(append(r.history, line...), '\n')
	}
	var set, keep []any
	nSet, nKeep := 0, 0
	for _, k := range keys {
		r := rows[k]
		n := r.last
		args := []any{n.PlayerID, n.Order, n.Source, string(n.Platform), n.Ref, string(n.Status), truncate(n.Reason, 1000),
			string(r.history), now.UnixMicro(), now.UnixMicro()}
		if r.setStatus {
			set, nSet = append(set, args...), nSet+1
		} else {
			keep, nKeep = append(keep, args...), nKeep+1
		}
	}
	const insert = `INSERT INTO orders (player_id, id, source, platform, order_ref, status, reason, history, created_at, updated_at) VALUES `
	if nSet > 0 {
		if _, err := tx.Exec(ctx, insert+placeholders(10, nSet)+` ON CONFLICT (player_id, id) DO UPDATE SET
			status = excluded.status, reason = excluded.reason, history = orders.history || excluded.history,
			updated_at = excluded.updated_at`, set...); err != nil {
			return fmt.Errorf("track orders: %w", err)
		}
	}
	if nKeep > 0 {
		// History only: the order keeps its status (its command was queued
		// by an earlier event and reports its own outcome).
		if _, err := tx.Exec(ctx, insert+placeholders(10, nKeep)+` ON CONFLICT (player_id, id) DO UPDATE SET
			history = orders.history || excluded.history, updated_at = excluded.updated_at`, keep...); err != nil {
			return fmt.Errorf("track orders: %w", err)
		}
	}
	return nil
}

// TrackOrder records one step that no event or command carries (an order
// pulled from a platform that cannot be processed, a partner order created).
func (db *DB) TrackOrder(ctx context.Context, n storegate.OrderNote) error {
	return db.Write(ctx, func(ctx context.Context, tx *Tx) error {
		return track(ctx, tx, []step{{note: n, setStatus: true}})
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
	rows, err := db.Query(ctx, `SELECT id, source, player_id, platform, order_ref, status, reason, history, created_at, updated_at
		FROM orders WHERE player_id = ? ORDER BY created_at DESC, id LIMIT ?`, playerID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []storegate.OrderRecord{}
	for rows.Next() {
		var o storegate.OrderRecord
		var history string
		var created, updated int64
		if err := rows.Scan(&o.ID, &o.Source, &o.PlayerID, &o.Platform, &o.Ref, &o.Status, &o.Reason, &history, &created, &updated); err != nil {
			return nil, err
		}
		o.CreatedAt, o.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
		o.History = []storegate.OrderStep{}
		for line := range strings.Lines(history) {
			var st storegate.OrderStep
			if err := json.Unmarshal([]byte(line), &st); err != nil {
				return nil, fmt.Errorf("order %s: history: %w", o.ID, err)
			}
			o.History = append(o.History, st)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// OrderStatuses returns the current status of each of a player's orders
// among ids that is known.
func (db *DB) OrderStatuses(ctx context.Context, playerID string, ids []string) (map[string]storegate.OrderStatus, error) {
	out := make(map[string]storegate.OrderStatus, len(ids))
	for start := 0; start < len(ids); start += maxRows {
		chunk := ids[start:min(start+maxRows, len(ids))]
		args := make([]any, 0, len(chunk)+1)
		args = append(args, playerID)
		for _, id := range chunk {
			args = append(args, id)
		}
		rows, err := db.Query(ctx, `SELECT id, status FROM orders WHERE player_id = ? AND id IN (`+
			strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			var s storegate.OrderStatus
			if err := rows.Scan(&id, &s); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = s
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
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
	return db.Write(ctx, func(ctx context.Context, tx *Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO fulfill_cursors (player_id, platform, since, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (player_id, platform) DO UPDATE SET
				since = CASE WHEN excluded.since > fulfill_cursors.since THEN excluded.since ELSE fulfill_cursors.since END,
				updated_at = excluded.updated_at`,
			playerID, string(platform), since.UnixMicro(), tx.Now().UnixMicro())
		return err
	})
}
