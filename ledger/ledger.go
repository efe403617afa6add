// Package ledger is storegate's embedded economy backend, the default target:
// currency wallets kept per platform, entitlements with use counts, revocation
// rules, and append-only histories. Every fulfillment and revocation is
// idempotent by its transaction id, every spend, consume and manual
// adjustment by its idempotency key.
//
// The files split the economy by concept: wallet.go (balances, spending,
// manual adjustments), entitlement.go (items, consuming), revocation.go
// (revocation rules and the AGS-shaped results), custom.go (the external
// revocation service contract), history.go (what support reads).
package ledger

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"storegate"
	"storegate/store"
	"storegate/store/engine"
)

// Config configures the ledger. Zero fields take the documented defaults.
type Config struct {
	// Players are player ids known to exist before they are granted anything.
	// Optional.
	Players []string
	// PlayerPattern, when set, is a regular expression: every player id that
	// matches it exists (for games whose ids are well formed by construction).
	// Optional; default none.
	PlayerPattern string
	// Revocation is the set of revocation rules. Default: currency
	// allow_negative, durable revoke, consumable revoke_unused.
	Revocation Rules
	// SpendOrder is the order in which a spend across platforms drains the
	// platform balances. Platforms left out come after, in DefaultSpendOrder.
	// Default DefaultSpendOrder.
	SpendOrder []storegate.Platform
}

// Ledger is the embedded economy backend.
type Ledger struct {
	db      *store.DB
	players map[string]bool
	pattern *regexp.Regexp
	rules   Rules
	order   []storegate.Platform
	// known caches players seen to exist: existence never ends, so a
	// positive answer can be kept for the life of the process.
	known sync.Map
}

// New returns a ledger over db, which must have been opened with the
// ledger's Migrations.
func New(db *store.DB, cfg Config) (*Ledger, error) {
	if err := checkMigrated(context.Background(), db); err != nil {
		return nil, err
	}
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
	rules, err := cfg.Revocation.withDefaults()
	if err != nil {
		return nil, err
	}
	l.rules = rules
	order, err := spendOrder(cfg.SpendOrder)
	if err != nil {
		return nil, err
	}
	l.order = order
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

// ErrNotGranted means a revoke names a fulfillment the ledger has not applied
// (yet): the revoke must wait for it.
var ErrNotGranted = errors.New("ledger: the fulfillment to revoke has not been applied")

// Deliver applies a command and classifies the result for the dispatcher. A
// revoke whose entries failed under the revocation rules is done: the rules
// decided, and the failures are in the revocation history for support.
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
	return outcome(err)
}

// Takes reports whether c can be applied inside the store's own
// transaction (store.Applier): everything but a revoke that must first ask
// a custom revocation service over the network, which goes through Deliver.
func (l *Ledger) Takes(c storegate.Command) bool {
	return c.Kind == storegate.KindFulfill || c.Kind == storegate.KindRevoke && !l.rules.anyCustom()
}

// Apply applies cs inside tx, in order, all or none (store.Applier): the
// transaction that accepts them, or the one that records their completion,
// so a grant and its "done" commit together or not at all. Fulfillments go
// at once, with a few multi-row statements (fulfillMany); a batch holding
// anything else goes one by one up to the first not done. The caller undoes
// tx's writes for any verdict but done.
func (l *Ledger) Apply(ctx context.Context, tx *engine.Tx, cs []storegate.Command) storegate.Outcome {
	if allFulfill(cs) {
		return l.fulfillAll(ctx, tx, cs)
	}
	for _, c := range cs {
		if out := l.applyOne(ctx, tx, c); out.Verdict != storegate.VerdictDone {
			return out
		}
	}
	return storegate.Outcome{Verdict: storegate.VerdictDone}
}

func allFulfill(cs []storegate.Command) bool {
	for _, c := range cs {
		if c.Kind != storegate.KindFulfill {
			return false
		}
	}
	return true
}

// applyOne applies one command of any kind inside tx.
func (l *Ledger) applyOne(ctx context.Context, tx *engine.Tx, c storegate.Command) storegate.Outcome {
	if err := validate(c); err != nil {
		return outcome(err)
	}
	var err error
	switch c.Kind {
	case storegate.KindFulfill:
		_, err = l.fulfillTx(ctx, tx, c)
	case storegate.KindRevoke:
		if c.Reverses == "" && len(c.Lines) == 0 {
			err = storegate.FieldError("revoke names neither a fulfillment nor lines", "reverses")
		} else {
			_, err = l.revokeTx(ctx, tx, c, nil)
		}
	default:
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: "UNKNOWN_KIND", Message: fmt.Sprintf("unknown command kind %q", c.Kind)}
	}
	return outcome(err)
}

// outcome classifies a ledger error for the dispatcher.
func outcome(err error) storegate.Outcome {
	var custom *CustomError
	var down *storegate.UnavailableError
	switch {
	case err == nil:
		return storegate.Outcome{Verdict: storegate.VerdictDone}
	case errors.As(err, &down):
		// The revocation service's breaker is open: this revoke waits for
		// it, spending no attempt, and the ledger's other commands go on.
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Deferred: true, RetryAfter: down.RetryAfter,
			Code: "CUSTOM_REVOCATION_UNAVAILABLE", Message: err.Error()}
	case errors.Is(err, ErrNotGranted):
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Deferred: true, Code: "NOT_GRANTED_YET", Message: err.Error()}
	case storegate.ErrorCode(err) == storegate.CodeOutOfStock:
		// The grant is owed but no key exists: support imports keys and
		// replays the dead letter, which then takes them.
		var e *storegate.Error
		errors.As(err, &e)
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: string(storegate.CodeOutOfStock),
			Message: e.Message + ", then replay this dead letter"}
	case storegate.ErrorCode(err) == storegate.CodeInsufficientFunds:
		// A grant whose debit the wallet cannot cover is owed nothing
		// until support decides: never granted unpaid.
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: string(storegate.CodeInsufficientFunds), Message: err.Error()}
	case storegate.ErrorCode(err) == storegate.CodeInvalidParameter:
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: string(storegate.CodeInvalidParameter), Message: err.Error()}
	case errors.As(err, &custom):
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "CUSTOM_REVOCATION", Message: err.Error()}
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
	// Entitlements are the ids granted (fulfill) or revoked (revoke).
	Entitlements []string `json:"entitlements,omitempty"`
	// Revocation is a revoke's AGS-shaped result.
	Revocation *Revocation `json:"revocation,omitempty"`
}

// CreditResult is one wallet movement.
type CreditResult struct {
	Currency     string             `json:"currency"`
	Platform     storegate.Platform `json:"platform"`
	Amount       int64              `json:"amount"`
	BalanceAfter int64              `json:"balance_after"`
}

// Transaction kinds beyond storegate's command kinds.
const (
	kindSpend      = "spend"
	kindConsume    = "consume"
	kindAdjustment = "adjustment"
)

// write runs fn as one write of the shared group commit. On PostgreSQL a
// write that loses a race (another batch applied the same transaction id or
// key first) or a deadlock between batches is run again by the store; it
// then sees what committed, and replays or applies: still once.
func (l *Ledger) write(ctx context.Context, fn func(context.Context, *engine.Tx) error) error {
	return l.db.Write(ctx, fn)
}

// prior is a transaction applied before.
type prior struct {
	result, hash string
}

// lookup returns the transaction recorded under id, or nil.
func lookup(ctx context.Context, tx *engine.Tx, id string) (*prior, error) {
	var p prior
	err := tx.QueryRow(ctx, `SELECT result, request_hash FROM ledger_transactions WHERE transaction_id = ?`, id).Scan(&p.result, &p.hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// replay returns the stored result of a transaction applied before, or nil.
func replay(ctx context.Context, tx *engine.Tx, id string) (*Result, error) {
	p, err := lookup(ctx, tx, id)
	if err != nil || p == nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal([]byte(p.result), &r); err != nil {
		return nil, err
	}
	r.Replayed = true
	return &r, nil
}

// replayKeyed is replay for a request carrying an idempotency key: the same
// key with a different request is a conflict, never the first answer.
func replayKeyed(ctx context.Context, tx *engine.Tx, id, hash string, into any) (bool, error) {
	p, err := lookup(ctx, tx, id)
	if err != nil || p == nil {
		return false, err
	}
	if p.hash != hash {
		return false, storegate.Errorf(storegate.CodeConflict, "this idempotency key was used for a different request")
	}
	return true, json.Unmarshal([]byte(p.result), into)
}

// txn is one row of ledger_transactions.
type txn struct {
	id, kind, player, reverses string
	request                    any // stored as JSON; hashed for keyed requests
	hash                       string
}

// record stores a transaction and its result. Its primary key is the
// idempotency guarantee: with concurrent writers (PostgreSQL), a second
// application of the same id fails here and its whole write is undone.
func record(ctx context.Context, tx *engine.Tx, t txn, result any) error {
	res, err := json.Marshal(result)
	if err != nil {
		return err
	}
	req := []byte{}
	if t.request != nil {
		if req, err = json.Marshal(t.request); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO ledger_transactions (transaction_id, kind, player_id, reverses, result, request, request_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, t.id, t.kind, t.player, t.reverses, string(res), string(req), t.hash, tx.Now().UnixMicro())
	return err
}

// finish replaces a recorded transaction's result.
func finish(ctx context.Context, tx *engine.Tx, id string, result any) error {
	raw, err := json.Marshal(result)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE ledger_transactions SET result = ? WHERE transaction_id = ?`, string(raw), id)
	return err
}

// digest is the request hash stored with a keyed transaction.
func digest(parts ...any) string {
	raw, _ := json.Marshal(parts)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
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

// addPlayer records that a player exists, once per process.
func (l *Ledger) addPlayer(ctx context.Context, tx *engine.Tx, player string) error {
	if _, known := l.known.Load(player); known {
		return nil // a player seen committed needs no row written again
	}
	_, err := tx.Exec(ctx, `INSERT INTO ledger_players (player_id, created_at) VALUES (?, ?) ON CONFLICT (player_id) DO NOTHING`,
		player, tx.Now().UnixMicro())
	return err
}

// Fulfill applies a fulfillment once: a repeat of the same transaction id
// changes nothing and returns the first result.
func (l *Ledger) Fulfill(ctx context.Context, c storegate.Command) (Result, error) {
	if err := validate(c); err != nil {
		return Result{}, err
	}
	var out Result
	err := l.write(ctx, func(ctx context.Context, tx *engine.Tx) (err error) {
		out, err = l.fulfillTx(ctx, tx, c)
		return err
	})
	return out, err
}

// fulfillment is what a fulfill transaction keeps of its command.
type fulfillment struct {
	Platform storegate.Platform `json:"platform"`
	Lines    []storegate.Line   `json:"lines"`
}

// grantKey names the li-th line's gi-th grant of a transaction: the id of
// the entitlement it creates and the idempotency key of its wallet entry.
func grantKey(id string, li, gi int) string { return fmt.Sprintf("%s/%d/%d", id, li, gi) }

func platformOf(c storegate.Command) storegate.Platform {
	if c.Platform == "" {
		return storegate.PlatformOther
	}
	return c.Platform
}
