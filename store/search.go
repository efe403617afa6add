package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"storegate"
	"storegate/store/engine"
)

// Lookups behind the support console's search. Each reads by a key the
// store already indexes (the outbox's id, the inbox's player and unique
// (source, key)), so a search costs a few index probes however large the
// history, and no accepted event pays an index write for it.

// Match is a command a search found: the player and the order it concerns.
type Match struct {
	PlayerID string `json:"player_id"`
	// Command is the transaction id the search named or led to.
	Command string `json:"command"`
	// Order is the order the command belongs to (its fulfillment's id).
	Order    string          `json:"order"`
	Source   string          `json:"source"`
	OrderRef string          `json:"order_ref,omitempty"`
	Kind     storegate.Kind  `json:"kind"`
	State    storegate.State `json:"state"`
}

// Commands returns the commands among ids that exist, in no set order.
func (db *DB) Commands(ctx context.Context, ids []string) ([]Match, error) {
	var out []Match
	for start := 0; start < len(ids); start += engine.MaxRows {
		chunk := ids[start:min(start+engine.MaxRows, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := db.Query(ctx, `SELECT id, player_id, command, state FROM outbox WHERE id IN (`+
			strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var m Match
			var payload string
			if err := rows.Scan(&m.Command, &m.PlayerID, &payload, &m.State); err != nil {
				rows.Close()
				return nil, err
			}
			var c storegate.Command
			if err := json.Unmarshal([]byte(payload), &c); err != nil {
				rows.Close()
				return nil, fmt.Errorf("decode command %s: %w", m.Command, err)
			}
			m.Order, m.Source, m.OrderRef, m.Kind = storegate.OrderOf(c), c.Source, c.OrderRef, c.Kind
			out = append(out, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PlayerSeen reports whether any event named the player.
func (db *DB) PlayerSeen(ctx context.Context, playerID string) (bool, error) {
	rows, err := db.Query(ctx, `SELECT 1 FROM inbox WHERE player_id = ? LIMIT 1`, playerID)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	seen := rows.Next()
	return seen, rows.Err()
}

// Sources lists the names of every source that ever sent an event. It
// walks the inbox's unique (source, key) index one source at a time (a
// loose index scan), so it reads as many index entries as there are
// sources, not events.
func (db *DB) Sources(ctx context.Context) ([]string, error) {
	rows, err := db.Query(ctx, `WITH RECURSIVE s (source) AS (
			SELECT MIN(source) FROM inbox
			UNION ALL
			SELECT (SELECT MIN(source) FROM inbox WHERE source > s.source) FROM s WHERE s.source IS NOT NULL)
		SELECT source FROM s WHERE source IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
