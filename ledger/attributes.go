package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"storegate/store/engine"
)

// UserAttributes are what the ledger tells Xsolla about a player in
// user_validation (user_attributes), as support set them; nil when none
// are set.
func (l *Ledger) UserAttributes(ctx context.Context, playerID string) (map[string]json.RawMessage, error) {
	var raw string
	err := l.db.QueryRow(ctx, `SELECT attributes FROM ledger_player_attributes WHERE player_id = ?`, playerID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// SetUserAttributes replaces a player's attributes; none removes them. The
// caller has checked them against Xsolla's schema.
func (l *Ledger) SetUserAttributes(ctx context.Context, playerID string, attrs map[string]json.RawMessage) error {
	return l.db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		if len(attrs) == 0 {
			_, err := tx.Exec(ctx, `DELETE FROM ledger_player_attributes WHERE player_id = ?`, playerID)
			return err
		}
		raw, err := json.Marshal(attrs)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO ledger_player_attributes (player_id, attributes, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (player_id) DO UPDATE SET attributes = excluded.attributes, updated_at = excluded.updated_at`,
			playerID, string(raw), tx.Now().UnixMicro())
		return err
	})
}
