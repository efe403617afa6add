package ledger

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"storegate"
)

// Entry is one wallet movement in the append-only history.
type Entry struct {
	ID int64 `json:"id"`
	// IdempotencyKey makes the movement happen once.
	IdempotencyKey string `json:"idempotency_key"`
	// Kind is fulfill, revoke, spend or adjustment.
	Kind     string             `json:"kind"`
	Currency string             `json:"currency"`
	Platform storegate.Platform `json:"platform"`
	Amount   int64              `json:"amount"`
	// BalanceAfter is the platform's balance after the movement; TotalAfter
	// the currency's total across platforms.
	BalanceAfter int64  `json:"balance_after"`
	TotalAfter   int64  `json:"total_after"`
	Reason       string `json:"reason"`
	// Source is the sender (its configured name), "game" for spends, or
	// "admin" for adjustments; OrderRef the sender's order or transaction.
	Source        string `json:"source"`
	OrderRef      string `json:"order_ref,omitempty"`
	TransactionID string `json:"transaction_id"`
	// Reverses is, for a claw-back, the id of the entry it takes back.
	Reverses  *int64    `json:"reverses,omitempty"`
	Actor     string    `json:"actor,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Page bounds a listing: at most Limit rows (default 100, at most 1000)
// after skipping Offset.
type Page struct {
	Limit, Offset int
}

func (p Page) bounds() (limit, offset int) {
	limit = p.Limit
	if limit <= 0 {
		limit = 100
	}
	return min(limit, 1000), max(p.Offset, 0)
}

// HistoryQuery filters a player's history. Zero fields do not filter.
type HistoryQuery struct {
	Currency      string
	Platform      storegate.Platform
	Kind          string
	TransactionID string
	// Since and Until bound created_at: Since <= t < Until.
	Since, Until time.Time
	// NewestFirst lists the latest movements first, as support reads a
	// long history; the default is oldest first.
	NewestFirst bool
	Page
}

// filter builds an AND of conditions and their arguments.
type filter struct {
	where []string
	args  []any
}

func (f *filter) add(cond string, arg any) {
	f.where = append(f.where, cond)
	f.args = append(f.args, arg)
}

func (f *filter) times(since, until time.Time) {
	if !since.IsZero() {
		f.add("created_at >= ?", since.UnixMicro())
	}
	if !until.IsZero() {
		f.add("created_at < ?", until.UnixMicro())
	}
}

// History lists a player's wallet movements, oldest first, and whether more
// follow the page.
func (l *Ledger) History(ctx context.Context, playerID string, q HistoryQuery) ([]Entry, bool, error) {
	f := filter{}
	f.add("player_id = ?", playerID)
	if q.Currency != "" {
		f.add("currency = ?", q.Currency)
	}
	if q.Platform != "" {
		f.add("platform = ?", string(q.Platform))
	}
	if q.Kind != "" {
		f.add("kind = ?", q.Kind)
	}
	if q.TransactionID != "" {
		f.add("transaction_id = ?", q.TransactionID)
	}
	f.times(q.Since, q.Until)
	limit, offset := q.bounds()
	order := "id"
	if q.NewestFirst {
		order = "id DESC"
	}
	rows, err := l.db.Query(ctx, `SELECT id, idempotency_key, kind, currency, platform, amount, balance_after, total_after, reason,
		source, order_ref, transaction_id, reverses, actor, created_at FROM ledger_entries
		WHERE `+strings.Join(f.where, " AND ")+` ORDER BY `+order+` LIMIT ? OFFSET ?`, append(f.args, limit+1, offset)...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var created int64
		if err := rows.Scan(&e.ID, &e.IdempotencyKey, &e.Kind, &e.Currency, &e.Platform, &e.Amount, &e.BalanceAfter, &e.TotalAfter,
			&e.Reason, &e.Source, &e.OrderRef, &e.TransactionID, &e.Reverses, &e.Actor, &created); err != nil {
			return nil, false, err
		}
		e.CreatedAt = time.UnixMicro(created).UTC()
		out = append(out, e)
	}
	return trim(out, limit, rows.Err())
}

// RevocationQuery filters the revocation history, as AGS's does. Zero
// fields do not filter.
type RevocationQuery struct {
	// TransactionID matches the fulfillment revoked or the revoke's own id.
	TransactionID string
	Source        string // ORDER, DLC, IAP, OTHER
	Status        string // SUCCESS, FAIL
	Since, Until  time.Time
	Page
}

// Revocations lists a player's revocations, newest first, and whether more
// follow the page.
func (l *Ledger) Revocations(ctx context.Context, playerID string, q RevocationQuery) ([]Revocation, bool, error) {
	f := filter{}
	f.add("player_id = ?", playerID)
	return l.revocations(ctx, f, q)
}

// AllRevocations lists every player's revocations, newest first, and
// whether more follow the page.
func (l *Ledger) AllRevocations(ctx context.Context, q RevocationQuery) ([]Revocation, bool, error) {
	return l.revocations(ctx, filter{}, q)
}

// Revocation returns the revocation record with id (the revoke's
// transaction id), and false when there is none.
func (l *Ledger) Revocation(ctx context.Context, id string) (Revocation, bool, error) {
	f := filter{}
	f.add("id = ?", id)
	out, _, err := l.revocations(ctx, f, RevocationQuery{Page: Page{Limit: 1}})
	if err != nil || len(out) == 0 {
		return Revocation{}, false, err
	}
	return out[0], true, nil
}

func (l *Ledger) revocations(ctx context.Context, f filter, q RevocationQuery) ([]Revocation, bool, error) {
	if q.TransactionID != "" {
		f.where = append(f.where, "(transaction_id = ? OR id = ?)")
		f.args = append(f.args, q.TransactionID, q.TransactionID)
	}
	if q.Source != "" {
		f.add("source = ?", q.Source)
	}
	if q.Status != "" {
		f.add("status = ?", q.Status)
	}
	f.times(q.Since, q.Until)
	where := ""
	if len(f.where) > 0 {
		where = " WHERE " + strings.Join(f.where, " AND ")
	}
	limit, offset := q.bounds()
	rows, err := l.db.Query(ctx, `SELECT record FROM ledger_revocations`+where+
		` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, append(f.args, limit+1, offset)...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	out := []Revocation{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, false, err
		}
		var r Revocation
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, false, err
		}
		r.summaries()
		out = append(out, r)
	}
	return trim(out, limit, rows.Err())
}

// trim cuts a listing read with one row too many to its page, reporting
// whether more follow.
func trim[T any](out []T, limit int, err error) ([]T, bool, error) {
	if err != nil {
		return nil, false, err
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}
