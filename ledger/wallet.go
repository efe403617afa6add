package ledger

import (
	"context"
	"fmt"
	"slices"
	"time"

	"storegate"
	"storegate/store/engine"
)

// DefaultSpendOrder is the order a spend across platforms drains balances:
// storegate.Platforms, which spends what can never be clawed back first.
var DefaultSpendOrder = storegate.Platforms

// spendOrder completes a configured order with the platforms it leaves out.
func spendOrder(cfg []storegate.Platform) ([]storegate.Platform, error) {
	out := make([]storegate.Platform, 0, len(DefaultSpendOrder))
	for i, p := range cfg {
		if !slices.Contains(storegate.Platforms, p) {
			return nil, fmt.Errorf("spend_order[%d]: unknown platform %q", i, p)
		}
		if slices.Contains(out, p) {
			return nil, fmt.Errorf("spend_order[%d]: %s is listed twice", i, p)
		}
		out = append(out, p)
	}
	for _, p := range DefaultSpendOrder {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// entry is one wallet movement to append to the history.
type entry struct {
	key, kind, player, currency string
	platform                    storegate.Platform
	amount                      int64
	reason, txn, source         string
	orderRef, actor             string
	reverses                    *int64
}

// moved is what credit did.
type moved struct {
	id                  int64 // the history entry
	balanceAfter, total int64 // the platform's balance and the currency's total after
}

// move moves a wallet by e.amount (negative to debit) and appends the
// history entry: two statements, whatever the history needs (the entry
// computes the total across platforms itself).
func move(ctx context.Context, tx *engine.Tx, e entry) (moved, error) {
	var m moved
	now := tx.Now().UnixMicro()
	err := tx.QueryRow(ctx, `INSERT INTO ledger_wallets (player_id, currency, platform, balance, updated_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (player_id, currency, platform) DO UPDATE SET balance = ledger_wallets.balance + excluded.balance, updated_at = excluded.updated_at
		RETURNING balance`, e.player, e.currency, string(e.platform), e.amount, now).Scan(&m.balanceAfter)
	if err != nil {
		return m, fmt.Errorf("move wallet: %w", err)
	}
	err = tx.QueryRow(ctx, `INSERT INTO ledger_entries (idempotency_key, kind, player_id, currency, platform, amount, balance_after, total_after,
			reason, transaction_id, source, order_ref, reverses, actor, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(SUM(balance), 0) FROM ledger_wallets WHERE player_id = ? AND currency = ?),
			?, ?, ?, ?, ?, ?, ?)
		RETURNING id, total_after`,
		e.key, e.kind, e.player, e.currency, string(e.platform), e.amount, m.balanceAfter, e.player, e.currency,
		e.reason, e.txn, e.source, e.orderRef, e.reverses, e.actor, now).Scan(&m.id, &m.total)
	if err != nil {
		return m, fmt.Errorf("append entry: %w", err)
	}
	return m, nil
}

// balances reads, and on PostgreSQL locks, a currency's platform balances,
// so a read-modify-write (a spend, a checked debit) cannot lose an update
// to a concurrent writer.
func balances(ctx context.Context, tx *engine.Tx, player, currency string) (map[storegate.Platform]int64, int64, error) {
	rows, err := tx.Query(ctx, `SELECT platform, balance FROM ledger_wallets WHERE player_id = ? AND currency = ?`+tx.ForUpdate(), player, currency)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := map[storegate.Platform]int64{}
	var total int64
	for rows.Next() {
		var p string
		var b int64
		if err := rows.Scan(&p, &b); err != nil {
			return nil, 0, err
		}
		out[storegate.Platform(p)] = b
		total += b
	}
	return out, total, rows.Err()
}

// Wallet is one currency's balance: the total and its split by platform.
type Wallet struct {
	Currency string `json:"currency"`
	// Balance is the total across platforms.
	Balance int64 `json:"balance"`
	// Platforms are the balances per platform, in spending order.
	Platforms []PlatformBalance `json:"platforms"`
	// SpendingBlocked is true while the total is negative (after a
	// claw-back of spent currency): every spend is refused until a purchase
	// or an adjustment makes it positive again.
	SpendingBlocked bool      `json:"spending_blocked"`
	UpdatedAt       time.Time `json:"updated_at"`
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
	for i := range out {
		out[i].SpendingBlocked = out[i].Balance < 0
		slices.SortStableFunc(out[i].Platforms, func(a, b PlatformBalance) int {
			return l.rank(a.Platform) - l.rank(b.Platform)
		})
	}
	return out, rows.Err()
}

func (l *Ledger) rank(p storegate.Platform) int {
	if i := slices.Index(l.order, p); i >= 0 {
		return i
	}
	return len(l.order)
}

// Spend is a game server's request to debit a wallet.
type Spend struct {
	PlayerID string
	Currency string
	Amount   int64
	// Platform, when set, debits only that platform's balance. Otherwise
	// the spend drains the platform balances in the spend order.
	Platform storegate.Platform
	// Key is the caller's idempotency key, unique per player: the same key
	// again returns the first result and debits nothing.
	Key    string
	Reason string
}

// SpendResult is what a spend did.
type SpendResult struct {
	TransactionID string         `json:"transaction_id"`
	Replayed      bool           `json:"replayed"`
	Currency      string         `json:"currency"`
	Amount        int64          `json:"amount"`
	Debits        []CreditResult `json:"debits"`
	// Balance is the currency's total after the spend.
	Balance int64 `json:"balance"`
}

// MaxAmount caps any single amount a caller asks for (a spend, an
// adjustment), far below where sums could overflow.
const MaxAmount = 1_000_000_000_000

func checkRequest(player, currency, key string, amount int64, allowNegative bool) error {
	switch {
	case player == "":
		return storegate.FieldError("a player is required", "player_id")
	case currency == "":
		return storegate.FieldError("a currency is required", "currency")
	case !ValidKey(key):
		return storegate.FieldError("the idempotency key must be 1 to 128 printable characters without '/' or spaces", "Idempotency-Key")
	case amount == 0 || amount > MaxAmount || amount < -MaxAmount || (amount < 0 && !allowNegative):
		return storegate.FieldError(fmt.Sprintf("amount must be between 1 and %d", int64(MaxAmount)), "amount")
	}
	return nil
}

// ValidKey reports whether an idempotency key is acceptable: 1 to 128
// printable ASCII characters, without '/' (it separates the parts of the
// transaction ids built from keys) or spaces.
func ValidKey(k string) bool {
	if len(k) == 0 || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] > '~' || k[i] == '/' {
			return false
		}
	}
	return true
}

// Spend debits a wallet once per idempotency key. A negative total blocks
// every spend; otherwise a spend on one platform needs that platform's
// balance, and a spend across platforms needs the total, drained in the
// spend order. A refused spend stores nothing.
func (l *Ledger) Spend(ctx context.Context, s Spend) (SpendResult, error) {
	if err := checkRequest(s.PlayerID, s.Currency, s.Key, s.Amount, false); err != nil {
		return SpendResult{}, err
	}
	if s.Platform != "" && !slices.Contains(storegate.Platforms, s.Platform) {
		return SpendResult{}, storegate.FieldError(fmt.Sprintf("unknown platform %q", s.Platform), "platform")
	}
	id := "spend/" + s.PlayerID + "/" + s.Key
	hash := digest(kindSpend, s.Currency, s.Amount, s.Platform, s.Reason)
	reason := s.Reason
	if reason == "" {
		reason = kindSpend
	}
	var out SpendResult
	err := l.write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		out = SpendResult{}
		if done, err := replayKeyed(ctx, tx, id, hash, &out); err != nil || done {
			out.Replayed = done
			return err
		}
		bal, total, err := balances(ctx, tx, s.PlayerID, s.Currency)
		if err != nil {
			return err
		}
		debits, err := l.planSpend(s, bal, total)
		if err != nil {
			return err
		}
		out = SpendResult{TransactionID: id, Currency: s.Currency, Amount: s.Amount, Debits: []CreditResult{}}
		for _, d := range debits {
			m, err := move(ctx, tx, entry{key: id + "/" + string(d.Platform), kind: kindSpend, player: s.PlayerID, currency: s.Currency,
				platform: d.Platform, amount: -d.Amount, reason: reason, txn: id, source: "game"})
			if err != nil {
				return err
			}
			out.Debits = append(out.Debits, CreditResult{Currency: s.Currency, Platform: d.Platform, Amount: -d.Amount, BalanceAfter: m.balanceAfter})
			out.Balance = m.total
		}
		return record(ctx, tx, txn{id: id, kind: kindSpend, player: s.PlayerID, request: s, hash: hash}, &out)
	})
	return out, err
}

// planSpend decides which platform balances a spend debits, or refuses it.
func (l *Ledger) planSpend(s Spend, bal map[storegate.Platform]int64, total int64) ([]CreditResult, error) {
	if total < 0 {
		return nil, storegate.Errorf(storegate.CodeInsufficientFunds,
			"the %s balance is negative (%d) after a claw-back: spending is blocked until it is positive again", s.Currency, total)
	}
	if s.Platform != "" {
		if bal[s.Platform] < s.Amount {
			return nil, storegate.Errorf(storegate.CodeInsufficientFunds,
				"the %s balance on %s is %d, less than %d", s.Currency, s.Platform, bal[s.Platform], s.Amount)
		}
		return []CreditResult{{Platform: s.Platform, Amount: s.Amount}}, nil
	}
	if total < s.Amount {
		return nil, storegate.Errorf(storegate.CodeInsufficientFunds, "the %s balance is %d, less than %d", s.Currency, total, s.Amount)
	}
	var out []CreditResult
	left := s.Amount
	for _, p := range l.order {
		if left == 0 {
			break
		}
		if b := bal[p]; b > 0 {
			d := min(b, left)
			out = append(out, CreditResult{Platform: p, Amount: d})
			left -= d
		}
	}
	if left > 0 {
		// Positive balances on platforms outside the order cannot exist
		// (the order lists every platform), but never debit less than asked.
		return nil, storegate.Errorf(storegate.CodeInsufficientFunds, "the %s balance cannot cover %d", s.Currency, s.Amount)
	}
	return out, nil
}

// Adjustment is a manual change of a balance by support staff.
type Adjustment struct {
	PlayerID string
	Currency string
	// Amount is positive to grant, negative to debit.
	Amount int64
	// Platform is the balance changed. Default System.
	Platform storegate.Platform
	// Reason and Actor (who did it) are required: they are the audit trail.
	Reason string
	Actor  string
	// Key is the idempotency key, unique per player.
	Key string
	// AllowNegative lets a debit take the platform balance below zero.
	// Default false: such a debit is refused.
	AllowNegative bool
}

// AdjustmentResult is what an adjustment did.
type AdjustmentResult struct {
	TransactionID string             `json:"transaction_id"`
	Replayed      bool               `json:"replayed"`
	EntryID       int64              `json:"entry_id"`
	Currency      string             `json:"currency"`
	Platform      storegate.Platform `json:"platform"`
	Amount        int64              `json:"amount"`
	BalanceAfter  int64              `json:"balance_after"`
	// Balance is the currency's total after the adjustment.
	Balance int64 `json:"balance"`
}

// Adjust applies a manual adjustment once per idempotency key.
func (l *Ledger) Adjust(ctx context.Context, a Adjustment) (AdjustmentResult, error) {
	if err := checkRequest(a.PlayerID, a.Currency, a.Key, a.Amount, true); err != nil {
		return AdjustmentResult{}, err
	}
	if a.Platform == "" {
		a.Platform = storegate.PlatformSystem
	}
	switch {
	case !slices.Contains(storegate.Platforms, a.Platform):
		return AdjustmentResult{}, storegate.FieldError(fmt.Sprintf("unknown platform %q", a.Platform), "platform")
	case a.Reason == "":
		return AdjustmentResult{}, storegate.FieldError("a reason is required", "reason")
	case a.Actor == "":
		return AdjustmentResult{}, storegate.FieldError("the actor (who makes the change) is required", "actor")
	}
	id := "adjust/" + a.PlayerID + "/" + a.Key
	hash := digest(kindAdjustment, a.Currency, a.Amount, a.Platform, a.Reason, a.Actor, a.AllowNegative)
	var out AdjustmentResult
	err := l.write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		out = AdjustmentResult{}
		if done, err := replayKeyed(ctx, tx, id, hash, &out); err != nil || done {
			out.Replayed = done
			return err
		}
		if a.Amount < 0 && !a.AllowNegative {
			bal, _, err := balances(ctx, tx, a.PlayerID, a.Currency)
			if err != nil {
				return err
			}
			if bal[a.Platform]+a.Amount < 0 {
				return storegate.Errorf(storegate.CodeInsufficientFunds,
					"the debit would take the %s balance on %s from %d to %d; set allow_negative to do that deliberately",
					a.Currency, a.Platform, bal[a.Platform], bal[a.Platform]+a.Amount)
			}
		}
		if err := l.addPlayer(ctx, tx, a.PlayerID); err != nil {
			return err
		}
		m, err := move(ctx, tx, entry{key: id, kind: kindAdjustment, player: a.PlayerID, currency: a.Currency, platform: a.Platform,
			amount: a.Amount, reason: a.Reason, txn: id, source: "admin", actor: a.Actor})
		if err != nil {
			return err
		}
		out = AdjustmentResult{TransactionID: id, EntryID: m.id, Currency: a.Currency, Platform: a.Platform, Amount: a.Amount,
			BalanceAfter: m.balanceAfter, Balance: m.total}
		return record(ctx, tx, txn{id: id, kind: kindAdjustment, player: a.PlayerID, request: a, hash: hash}, &out)
	})
	if err == nil {
		l.known.Store(a.PlayerID, true)
	}
	return out, err
}
