package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"storegate"
)

// Accept stores an event, the commands it owes and the answer it gets, in one
// transaction. The inbox's unique (source, key) makes concurrent copies of one
// event race-free: exactly one inserts; every other copy writes nothing and
// gets the first copy's answer back with duplicate true.
func (db *DB) Accept(ctx context.Context, ev storegate.Event, cmds []storegate.Command, answer storegate.Answer) (stored storegate.Answer, duplicate bool, err error) {
	var out struct {
		Answer    storegate.Answer
		Duplicate bool
		EventID   int64
	}
	err = db.Write(ctx, func(ctx context.Context, tx *Tx) error {
		out.Answer, out.Duplicate, out.EventID = storegate.Answer{}, false, 0
		received := ev.ReceivedAt
		if received.IsZero() {
			received = tx.Now()
		}
		err := tx.QueryRow(ctx, `INSERT INTO inbox (source, key, type, player_id, order_ref, body, answer_status, answer_body, received_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, key) DO NOTHING RETURNING id`,
			ev.Source, ev.Key, ev.Type, ev.PlayerID, ev.OrderRef, ev.Body, answer.Status, answer.Body, received.UnixMicro()).Scan(&out.EventID)
		if errors.Is(err, sql.ErrNoRows) {
			out.Duplicate = true
			return tx.QueryRow(ctx, `SELECT id, answer_status, answer_body FROM inbox WHERE source = ? AND key = ?`,
				ev.Source, ev.Key).Scan(&out.EventID, &out.Answer.Status, &out.Answer.Body)
		}
		if err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		out.Answer = answer
		for _, c := range cmds {
			if err := insertCommand(ctx, tx, out.EventID, c); err != nil {
				return err
			}
		}
		return nil
	})
	return out.Answer, out.Duplicate, err
}

func insertCommand(ctx context.Context, tx *Tx, eventID int64, c storegate.Command) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = tx.Now()
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode command: %w", err)
	}
	now := tx.Now().UnixMicro()
	// A command id already queued (the same order revoked by two events) is
	// the same command: keep the first.
	_, err = tx.Exec(ctx, `INSERT INTO outbox (id, event_id, kind, target, player_id, command, state, next_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		c.ID, eventID, string(c.Kind), c.Target, c.PlayerID, string(payload), now, now, now)
	if err != nil {
		return fmt.Errorf("insert command %s: %w", c.ID, err)
	}
	return nil
}

// Link records that a sender's order maps to one of our transaction ids, with
// the answer given. The first link for (source, orderID) wins: a repeat gets
// the stored answer back.
func (db *DB) Link(ctx context.Context, source, orderID, transactionID string, answer []byte) ([]byte, error) {
	var stored []byte
	err := db.Write(ctx, func(ctx context.Context, tx *Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO links (source, order_id, transaction_id, answer, created_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, order_id) DO NOTHING`,
			source, orderID, transactionID, answer, tx.Now().UnixMicro())
		if err != nil {
			return fmt.Errorf("insert link: %w", err)
		}
		return tx.QueryRow(ctx, `SELECT answer FROM links WHERE source = ? AND order_id = ?`, source, orderID).Scan(&stored)
	})
	return stored, err
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
