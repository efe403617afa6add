package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"storegate"
	"storegate/store/engine"
)

// Entitlement statuses.
const (
	StatusActive   = "active"
	StatusConsumed = "consumed" // every use consumed; an opened box
	StatusRevoked  = "revoked"
)

// Entitlement is one granted item.
type Entitlement struct {
	ID   string             `json:"id"`
	Item string             `json:"item"`
	Type storegate.ItemType `json:"type"`
	// SKU is the purchased line's SKU: a bundle's SKU for its contents.
	SKU      string             `json:"sku"`
	Platform storegate.Platform `json:"platform"`
	// UseCount is the uses left; GrantedCount what the grant gave;
	// ConsumedCount what the game consumed.
	UseCount      int64  `json:"use_count"`
	GrantedCount  int64  `json:"granted_count"`
	ConsumedCount int64  `json:"consumed_count"`
	Status        string `json:"status"`
	// Key is a game_key entitlement's key.
	Key           string    `json:"key,omitempty"`
	TransactionID string    `json:"transaction_id"`
	GrantedAt     time.Time `json:"granted_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// consumable reports whether items of type t are used up: consumables by
// their use count, loot and option boxes by being opened (one use).
func consumable(t storegate.ItemType) bool {
	return t == storegate.ItemConsumable || t == storegate.ItemLootBox || t == storegate.ItemOptionBox
}

func entitle(ctx context.Context, tx *engine.Tx, id string, c storegate.Command, line storegate.Line, g storegate.Grant, platform storegate.Platform) error {
	typ := g.Type
	if typ == "" {
		typ = storegate.ItemDurable
	}
	qty := g.Quantity
	if qty <= 0 {
		qty = 1
	}
	now := tx.Now().UnixMicro()
	_, err := tx.Exec(ctx, `INSERT INTO ledger_entitlements (id, player_id, item, type, sku, platform, use_count, granted_count, status, transaction_id, granted_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)`,
		id, c.PlayerID, g.Item, string(typ), line.SKU, string(platform), qty, qty, c.ID, now, now)
	if err != nil {
		return fmt.Errorf("entitle: %w", err)
	}
	return nil
}

const entitlementColumns = `id, item, type, sku, platform, use_count, granted_count, consumed_count, status, transaction_id, granted_at, updated_at`

func scanEntitlement(rows interface{ Scan(...any) error }) (Entitlement, error) {
	var e Entitlement
	var granted, updated int64
	err := rows.Scan(&e.ID, &e.Item, &e.Type, &e.SKU, &e.Platform, &e.UseCount, &e.GrantedCount, &e.ConsumedCount,
		&e.Status, &e.TransactionID, &granted, &updated)
	e.GrantedAt, e.UpdatedAt = time.UnixMicro(granted).UTC(), time.UnixMicro(updated).UTC()
	return e, err
}

// Entitlements lists a player's entitlements, newest first: the active ones,
// or every one (consumed and revoked too) when all is true.
func (l *Ledger) Entitlements(ctx context.Context, playerID string, all bool) ([]Entitlement, error) {
	q := `SELECT ` + entitlementColumns + ` FROM ledger_entitlements WHERE player_id = ?`
	if !all {
		q += ` AND status = 'active'`
	}
	rows, err := l.db.Query(ctx, q+` ORDER BY granted_at DESC, id`, playerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Entitlement{}
	keys := false
	for rows.Next() {
		e, err := scanEntitlement(rows)
		if err != nil {
			return nil, err
		}
		keys = keys || e.Type == storegate.ItemGameKey
		out = append(out, e)
	}
	if err := rows.Err(); err != nil || !keys {
		return out, err
	}
	return out, l.addKeys(ctx, playerID, out)
}

// addKeys fills in the keys of a player's game_key entitlements.
func (l *Ledger) addKeys(ctx context.Context, playerID string, ents []Entitlement) error {
	given, err := l.PlayerKeys(ctx, playerID)
	if err != nil {
		return err
	}
	codes := make(map[string]string, len(given))
	for _, k := range given {
		codes[k.EntitlementID] = k.Key
	}
	for i := range ents {
		ents[i].Key = codes[ents[i].ID]
	}
	return nil
}

// Consume is a game server's request to use up uses of an entitlement.
type Consume struct {
	PlayerID      string
	EntitlementID string
	// UseCount is how many uses to consume. Default 1.
	UseCount int64
	// Key is the caller's idempotency key, unique per player.
	Key    string
	Reason string
}

// ConsumeResult is what a consume did.
type ConsumeResult struct {
	TransactionID string      `json:"transaction_id"`
	Replayed      bool        `json:"replayed"`
	Consumed      int64       `json:"consumed"`
	Entitlement   Entitlement `json:"entitlement"`
}

// Consume uses up uses of a consumable (or opens a box) once per
// idempotency key. Refusals store nothing: an unknown entitlement (or one of
// another player) is NOT_FOUND; a durable item, a revoked entitlement or
// too few uses left is a CONFLICT.
func (l *Ledger) Consume(ctx context.Context, r Consume) (ConsumeResult, error) {
	if r.UseCount == 0 {
		r.UseCount = 1
	}
	switch {
	case r.PlayerID == "":
		return ConsumeResult{}, storegate.FieldError("a player is required", "player_id")
	case r.EntitlementID == "":
		return ConsumeResult{}, storegate.FieldError("an entitlement is required", "entitlement_id")
	case !ValidKey(r.Key):
		return ConsumeResult{}, storegate.FieldError("the idempotency key must be 1 to 128 printable characters without '/' or spaces", "Idempotency-Key")
	case r.UseCount < 0 || r.UseCount > MaxAmount:
		return ConsumeResult{}, storegate.FieldError("use_count must be positive", "use_count")
	}
	id := "consume/" + r.PlayerID + "/" + r.Key
	hash := digest(kindConsume, r.EntitlementID, r.UseCount, r.Reason)
	var out ConsumeResult
	err := l.write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		out = ConsumeResult{}
		if done, err := replayKeyed(ctx, tx, id, hash, &out); err != nil || done {
			out.Replayed = done
			return err
		}
		e, err := scanEntitlement(tx.QueryRow(ctx, `SELECT `+entitlementColumns+` FROM ledger_entitlements WHERE id = ? AND player_id = ?`+tx.ForUpdate(),
			r.EntitlementID, r.PlayerID))
		if errors.Is(err, sql.ErrNoRows) {
			return storegate.Errorf(storegate.CodeNotFound, "the player has no entitlement %q", r.EntitlementID)
		}
		if err != nil {
			return err
		}
		switch {
		case !consumable(e.Type):
			return storegate.Errorf(storegate.CodeConflict, "a %s item cannot be consumed", e.Type)
		case e.Status == StatusRevoked:
			return storegate.Errorf(storegate.CodeConflict, "the entitlement was revoked")
		case e.UseCount < r.UseCount:
			return storegate.Errorf(storegate.CodeConflict, "the entitlement has %d uses left, fewer than %d", e.UseCount, r.UseCount)
		}
		e.UseCount -= r.UseCount
		e.ConsumedCount += r.UseCount
		if e.UseCount == 0 {
			e.Status = StatusConsumed
		}
		e.UpdatedAt = tx.Now().UTC()
		if _, err := tx.Exec(ctx, `UPDATE ledger_entitlements SET use_count = ?, consumed_count = ?, status = ?, updated_at = ? WHERE id = ?`,
			e.UseCount, e.ConsumedCount, e.Status, tx.Now().UnixMicro(), e.ID); err != nil {
			return err
		}
		out = ConsumeResult{TransactionID: id, Consumed: r.UseCount, Entitlement: e}
		return record(ctx, tx, txn{id: id, kind: kindConsume, player: r.PlayerID, request: r, hash: hash}, &out)
	})
	return out, err
}
