// Package ledger is storegate's embedded economy backend, the default target:
// currency wallets kept per platform, entitlements, and an append-only history.
// Every fulfilment and revocation is idempotent by its transaction id.
package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"storegate"
	"storegate/store"
)

// Config configures the ledger.
type Config struct {
	// Players are player ids known to exist before they are granted anything.
	// Optional.
	Players []string
	// PlayerPattern, when set, is a regular expression: every player id that
	// matches it exists (for games whose ids are well formed by construction).
	// Optional; default none.
	PlayerPattern string
}

// Ledger is the embedded economy backend.
type Ledger struct {
	db      *store.DB
	players map[string]bool
	pattern *regexp.Regexp
	// known caches players seen to exist: existence never ends, so a
	// positive answer can be kept for the life of the process.
	known sync.Map
}

// New returns a ledger over db.
func New(db *store.DB, cfg Config) (*Ledger, error) {
	l := &Ledger{db: db, players: map[string]bool{}}
	for _, p := range cfg.Players {
		l.players[p] = true
	}
	if cfg.PlayerPattern != "" {
		re, err := regexp.Compile(cfg.PlayerPattern)
		if err != nil {
			return nil, fmt.Errorf("player_pattern: %w", err)
		}
		l.pattern = re
	}
	return l, nil
}

// UserExists reports whether a player exists: it is configured (listed, or
// matching the pattern), or has been granted something before.
func (l *Ledger) UserExists(ctx context.Context, playerID string) (bool, error) {
	if playerID == "" {
		return false, nil
	}
	if l.players[playerID] || (l.pattern != nil && l.pattern.MatchString(playerID)) {
		return true, nil
	}
	if _, ok := l.known.Load(playerID); ok {
		return true, nil
	}
	var n int
	if err := l.db.QueryRow(ctx, `SELECT COUNT(*) FROM ledger_players WHERE player_id = ?`, playerID).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		l.known.Store(playerID, true)
	}
	return n > 0, nil
}

// ErrNotGranted means a revoke names a fulfilment the ledger has not applied
// (yet): the revoke must wait for it.
var ErrNotGranted = errors.New("ledger: the fulfilment to revoke has not been applied")

// Deliver applies a command and classifies the result for the dispatcher.
func (l *Ledger) Deliver(ctx context.Context, c storegate.Command) storegate.Outcome {
	var err error
	switch c.Kind {
	case storegate.KindFulfill:
		_, err = l.Fulfill(ctx, c)
	case storegate.KindRevoke:
		_, err = l.Revoke(ctx, c)
	default:
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: "UNKNOWN_KIND", Message: fmt.Sprintf("unknown command kind %q", c.Kind)}
	}
	switch {
	case err == nil:
		return storegate.Outcome{Verdict: storegate.VerdictDone}
	case errors.Is(err, ErrNotGranted):
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Deferred: true, Code: "NOT_GRANTED_YET", Message: err.Error()}
	case storegate.ErrorCode(err) == storegate.CodeInvalidParameter:
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: string(storegate.CodeInvalidParameter), Message: err.Error()}
	default:
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "STORE", Message: err.Error()}
	}
}

// Result is what one transaction did, kept with it for history and replays.
type Result struct {
	TransactionID string         `json:"transaction_id"`
	Kind          storegate.Kind `json:"kind"`
	Replayed      bool           `json:"replayed,omitempty"`
	Credits       []CreditResult `json:"credits,omitempty"`
	Entitlements  []string       `json:"entitlements,omitempty"`
}

// CreditResult is one wallet movement.
type CreditResult struct {
	Currency     string             `json:"currency"`
	Platform     storegate.Platform `json:"platform"`
	Amount       int64              `json:"amount"`
	BalanceAfter int64              `json:"balance_after"`
}

// replay returns the stored result of a transaction applied before, or nil.
func replay(ctx context.Context, tx *store.Tx, id string) (*Result, error) {
	var raw string
	err := tx.QueryRow(ctx, `SELECT result FROM ledger_transactions WHERE transaction_id = ?`, id).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return nil, err
	}
	r.Replayed = true
	return &r, nil
}

// record stores a transaction and its result. Its primary key is the
// idempotency guarantee: with concurrent writers (PostgreSQL), a second
// application of the same id fails here and its whole write is undone.
func record(ctx context.Context, tx *store.Tx, c storegate.Command, r *Result) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO ledger_transactions (transaction_id, kind, player_id, reverses, result, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, c.ID, string(c.Kind), c.PlayerID, c.Reverses, string(raw), tx.Now().UnixMicro())
	return err
}

func finish(ctx context.Context, tx *store.Tx, r *Result) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE ledger_transactions SET result = ? WHERE transaction_id = ?`, string(raw), r.TransactionID)
	return err
}

func validate(c storegate.Command) error {
	switch {
	case c.ID == "":
		return storegate.FieldError("command has no transaction id", "id")
	case c.PlayerID == "":
		return storegate.FieldError("command has no player", "player_id")
	}
	return nil
}

// Fulfill applies a fulfilment once: a repeat of the same transaction id
// changes nothing and returns the first result.
func (l *Ledger) Fulfill(ctx context.Context, c storegate.Command) (Result, error) {
	if err := validate(c); err != nil {
		return Result{}, err
	}
	platform := c.Platform
	if platform == "" {
		platform = storegate.PlatformOther
	}
	var out Result
	_, known := l.known.Load(c.PlayerID)
	err := l.db.Write(ctx, func(ctx context.Context, tx *store.Tx) error {
		prior, err := replay(ctx, tx, c.ID)
		if err != nil || prior != nil {
			if prior != nil {
				out = *prior
			}
			return err
		}
		out = Result{TransactionID: c.ID, Kind: storegate.KindFulfill}
		if !known { // a player seen committed needs no row written again
			if _, err := tx.Exec(ctx, `INSERT INTO ledger_players (player_id, created_at) VALUES (?, ?) ON CONFLICT (player_id) DO NOTHING`,
				c.PlayerID, tx.Now().UnixMicro()); err != nil {
				return err
			}
		}
		for li, line := range c.Lines {
			for gi, g := range line.Grants {
				key := fmt.Sprintf("%s/%d/%d", c.ID, li, gi)
				switch {
				case g.Currency != "":
					after, err := credit(ctx, tx, entry{key: key, player: c.PlayerID, currency: g.Currency, platform: platform,
						amount: g.Amount, reason: "fulfill", txn: c.ID, source: c.Source})
					if err != nil {
						return err
					}
					out.Credits = append(out.Credits, CreditResult{Currency: g.Currency, Platform: platform, Amount: g.Amount, BalanceAfter: after})
				case g.Item != "":
					if err := entitle(ctx, tx, key, c, line, g, platform); err != nil {
						return err
					}
					out.Entitlements = append(out.Entitlements, key)
				default:
					return storegate.FieldError("grant names neither a currency nor an item", fmt.Sprintf("lines.%d.grants.%d", li, gi))
				}
			}
		}
		return record(ctx, tx, c, &out)
	})
	if err == nil {
		l.known.Store(c.PlayerID, true) // only once committed
	}
	return out, err
}

type entry struct {
	key, player, currency string
	platform              storegate.Platform
	amount                int64
	reason, txn, source   string
	reverses              *int64
	actor                 string
}

// credit moves a wallet by e.amount (negative to debit) and appends the
// history entry, returning the balance after.
func credit(ctx context.Context, tx *store.Tx, e entry) (int64, error) {
	var after int64
	err := tx.QueryRow(ctx, `INSERT INTO ledger_wallets (player_id, currency, platform, balance, updated_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (player_id, currency, platform) DO UPDATE SET balance = ledger_wallets.balance + excluded.balance, updated_at = excluded.updated_at
		RETURNING balance`, e.player, e.currency, string(e.platform), e.amount, tx.Now().UnixMicro()).Scan(&after)
	if err != nil {
		return 0, fmt.Errorf("move wallet: %w", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO ledger_entries (idempotency_key, player_id, currency, platform, amount, balance_after, reason, transaction_id, source, reverses, actor, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.key, e.player, e.currency, string(e.platform), e.amount, after, e.reason, e.txn, e.source, e.reverses, e.actor, tx.Now().UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("append entry: %w", err)
	}
	return after, nil
}

func entitle(ctx context.Context, tx *store.Tx, id string, c storegate.Command, line storegate.Line, g storegate.Grant, platform storegate.Platform) error {
	typ := g.Type
	if typ == "" {
		typ = storegate.ItemDurable
	}
	qty := g.Quantity
	if qty <= 0 {
		qty = 1
	}
	now := tx.Now().UnixMicro()
	_, err := tx.Exec(ctx, `INSERT INTO ledger_entitlements (id, player_id, item, type, sku, platform, use_count, status, transaction_id, granted_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)`,
		id, c.PlayerID, g.Item, string(typ), line.SKU, string(platform), qty, c.ID, now, now)
	if err != nil {
		return fmt.Errorf("entitle: %w", err)
	}
	return nil
}

// Revoke undoes a fulfilment once. With no lines it takes back everything
// the fulfilment named by c.Reverses granted; with lines (a partial refund) it
// takes back only those. Currency is debited from the wallet of the platform
// it was bought on, and may go negative (a claw-back of spent currency).
func (l *Ledger) Revoke(ctx context.Context, c storegate.Command) (Result, error) {
	if err := validate(c); err != nil {
		return Result{}, err
	}
	if c.Reverses == "" && len(c.Lines) == 0 {
		return Result{}, storegate.FieldError("revoke names neither a fulfilment nor lines", "reverses")
	}
	var out Result
	err := l.db.Write(ctx, func(ctx context.Context, tx *store.Tx) error {
		if c.Reverses != "" {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM ledger_transactions WHERE transaction_id = ? AND kind = 'fulfill'`, c.Reverses).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%w: %s", ErrNotGranted, c.Reverses)
			}
		}
		prior, err := replay(ctx, tx, c.ID)
		if err != nil || prior != nil {
			if prior != nil {
				out = *prior
			}
			return err
		}
		out = Result{TransactionID: c.ID, Kind: storegate.KindRevoke}
		// Recorded first: remaining() counts what this revoke takes as it goes.
		if err := record(ctx, tx, c, &out); err != nil {
			return err
		}
		if len(c.Lines) == 0 {
			err = revokeAll(ctx, tx, c, &out)
		} else {
			err = revokeLines(ctx, tx, c, &out)
		}
		if err != nil {
			return err
		}
		return finish(ctx, tx, &out)
	})
	return out, err
}

func revokeAll(ctx context.Context, tx *store.Tx, c storegate.Command, out *Result) error {
	rows, err := tx.Query(ctx, `SELECT id, idempotency_key, currency, platform, amount FROM ledger_entries
		WHERE transaction_id = ? AND player_id = ? AND reverses IS NULL ORDER BY id`, c.Reverses, c.PlayerID)
	if err != nil {
		return err
	}
	type grant struct {
		id            int64
		key, currency string
		platform      storegate.Platform
		amount        int64
	}
	var grants []grant
	for rows.Next() {
		var g grant
		if err := rows.Scan(&g.id, &g.key, &g.currency, &g.platform, &g.amount); err != nil {
			rows.Close()
			return err
		}
		grants = append(grants, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, g := range grants {
		id := g.id
		// A partial revoke of the same fulfilment may have taken some back.
		left, err := remaining(ctx, tx, c.Reverses, c.PlayerID, g.currency, g.platform)
		if err != nil {
			return err
		}
		amount := min(g.amount, left)
		if amount <= 0 {
			continue
		}
		after, err := credit(ctx, tx, entry{key: c.ID + "/" + g.key, player: c.PlayerID, currency: g.currency, platform: g.platform,
			amount: -amount, reason: reason(c), txn: c.ID, source: c.Source, reverses: &id})
		if err != nil {
			return err
		}
		out.Credits = append(out.Credits, CreditResult{Currency: g.currency, Platform: g.platform, Amount: -amount, BalanceAfter: after})
	}
	ids, err := revokeEntitlements(ctx, tx, `transaction_id = ? AND player_id = ?`, []any{c.Reverses, c.PlayerID}, -1)
	out.Entitlements = ids
	return err
}

func revokeLines(ctx context.Context, tx *store.Tx, c storegate.Command, out *Result) error {
	platform := c.Platform
	if platform == "" {
		platform = storegate.PlatformOther
	}
	for li, line := range c.Lines {
		for gi, g := range line.Grants {
			key := fmt.Sprintf("%s/%d/%d", c.ID, li, gi)
			switch {
			case g.Currency != "":
				amount := g.Amount
				if c.Reverses != "" {
					// Never take back more of a fulfilment than it granted
					// and earlier revokes of it left.
					left, err := remaining(ctx, tx, c.Reverses, c.PlayerID, g.Currency, platform)
					if err != nil {
						return err
					}
					if amount = min(amount, left); amount <= 0 {
						continue
					}
				}
				after, err := credit(ctx, tx, entry{key: key, player: c.PlayerID, currency: g.Currency, platform: platform,
					amount: -amount, reason: reason(c), txn: c.ID, source: c.Source})
				if err != nil {
					return err
				}
				out.Credits = append(out.Credits, CreditResult{Currency: g.Currency, Platform: platform, Amount: -amount, BalanceAfter: after})
			case g.Item != "":
				n := g.Quantity
				if n <= 0 || g.Type == storegate.ItemConsumable {
					n = 1 // a consumable's quantity is its use count, held by one entitlement
				}
				where, args := `player_id = ? AND item = ?`, []any{c.PlayerID, g.Item}
				if c.Reverses != "" {
					where, args = where+` AND transaction_id = ?`, append(args, c.Reverses)
				}
				ids, err := revokeEntitlements(ctx, tx, where, args, int(n))
				if err != nil {
					return err
				}
				out.Entitlements = append(out.Entitlements, ids...)
			}
		}
	}
	return nil
}

// remaining is how much of currency on platform the fulfilment fulfillID
// credited to player that no revoke of it (the running one included: Revoke
// records itself first) has taken back yet.
func remaining(ctx context.Context, tx *store.Tx, fulfillID, player, currency string, platform storegate.Platform) (int64, error) {
	var granted, taken int64
	if err := tx.QueryRow(ctx, `SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_entries
		WHERE transaction_id = ? AND player_id = ? AND currency = ? AND platform = ?`,
		fulfillID, player, currency, string(platform)).Scan(&granted); err != nil {
		return 0, err
	}
	if err := tx.QueryRow(ctx, `SELECT CAST(COALESCE(SUM(-e.amount), 0) AS BIGINT) FROM ledger_entries e
		JOIN ledger_transactions t ON t.transaction_id = e.transaction_id
		WHERE t.kind = 'revoke' AND t.reverses = ? AND e.player_id = ? AND e.currency = ? AND e.platform = ?`,
		fulfillID, player, currency, string(platform)).Scan(&taken); err != nil {
		return 0, err
	}
	return max(granted-taken, 0), nil
}

// revokeEntitlements marks up to limit (all when negative) active
// entitlements matching where as revoked, newest first.
func revokeEntitlements(ctx context.Context, tx *store.Tx, where string, args []any, limit int) ([]string, error) {
	q := `SELECT id FROM ledger_entitlements WHERE status = 'active' AND ` + where + ` ORDER BY granted_at DESC, id DESC`
	if limit >= 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if _, err := tx.Exec(ctx, `UPDATE ledger_entitlements SET status = 'revoked', updated_at = ? WHERE id = ?`, tx.Now().UnixMicro(), id); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

func reason(c storegate.Command) string {
	if c.Reason != "" {
		return c.Reason
	}
	return "revoke"
}

// Wallet is one currency's balance: the total and its split by platform.
type Wallet struct {
	Currency  string            `json:"currency"`
	Balance   int64             `json:"balance"`
	Platforms []PlatformBalance `json:"platforms"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// PlatformBalance is the part of a balance bought on one platform.
type PlatformBalance struct {
	Platform storegate.Platform `json:"platform"`
	Balance  int64              `json:"balance"`
}

// Wallets lists a player's wallets, by currency.
func (l *Ledger) Wallets(ctx context.Context, playerID string) ([]Wallet, error) {
	rows, err := l.db.Query(ctx, `SELECT currency, platform, balance, updated_at FROM ledger_wallets
		WHERE player_id = ? ORDER BY currency, platform`, playerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Wallet{}
	for rows.Next() {
		var cur, plat string
		var bal, upd int64
		if err := rows.Scan(&cur, &plat, &bal, &upd); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Currency != cur {
			out = append(out, Wallet{Currency: cur, Platforms: []PlatformBalance{}})
		}
		w := &out[len(out)-1]
		w.Balance += bal
		w.Platforms = append(w.Platforms, PlatformBalance{Platform: storegate.Platform(plat), Balance: bal})
		if t := time.UnixMicro(upd).UTC(); t.After(w.UpdatedAt) {
			w.UpdatedAt = t
		}
	}
	return out, rows.Err()
}

// Entitlement is one granted item.
type Entitlement struct {
	ID            string             `json:"id"`
	Item          string             `json:"item"`
	Type          storegate.ItemType `json:"type"`
	SKU           string             `json:"sku"`
	Platform      storegate.Platform `json:"platform"`
	UseCount      int64              `json:"use_count"`
	Status        string             `json:"status"`
	TransactionID string             `json:"transaction_id"`
	GrantedAt     time.Time          `json:"granted_at"`
}

// Entitlements lists a player's entitlements, newest first; revoked ones only
// when all is true.
func (l *Ledger) Entitlements(ctx context.Context, playerID string, all bool) ([]Entitlement, error) {
	q := `SELECT id, item, type, sku, platform, use_count, status, transaction_id, granted_at FROM ledger_entitlements WHERE player_id = ?`
	if !all {
		q += ` AND status = 'active'`
	}
	rows, err := l.db.Query(ctx, q+` ORDER BY granted_at DESC, id`, playerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Entitlement{}
	for rows.Next() {
		var e Entitlement
		var granted int64
		if err := rows.Scan(&e.ID, &e.Item, &e.Type, &e.SKU, &e.Platform, &e.UseCount, &e.Status, &e.TransactionID, &granted); err != nil {
			return nil, err
		}
		e.GrantedAt = time.UnixMicro(granted).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
