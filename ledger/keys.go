package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"storegate"
	"storegate/store/engine"
)

// Game keys. Each game_key SKU has a pool of keys support imports. A grant
// takes one available key per unit, in the transaction that applies it, and
// marks it assigned to the entitlement that carries it; a revoke marks it
// revoked. Only an available key is ever taken, and the take is one
// statement that PostgreSQL's other writers skip past (FOR UPDATE SKIP
// LOCKED), so no key goes to two buyers, across replicas too. The codes are
// never logged and never in an error: they are worth money.

// Key statuses.
const (
	KeyAvailable = "available"
	KeyAssigned  = "assigned"
	KeyRevoked   = "revoked"
)

// MaxKeyLength caps one key's length.
const MaxKeyLength = 256

// KeyPool is a pool's counts.
type KeyPool struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Assigned  int64  `json:"assigned"`
	Revoked   int64  `json:"revoked"`
}

// KeyImport is what an import did: the keys added, those already in a pool
// (or twice in the import), and the pool's available keys after it.
type KeyImport struct {
	SKU       string `json:"sku"`
	Added     int64  `json:"added"`
	Duplicate int64  `json:"duplicate"`
	Available int64  `json:"available"`
}

// errOutOfStock is a grant or a hold that needs more keys of a SKU than
// its pool has available.
func errOutOfStock(sku string) error {
	return &storegate.Error{Code: storegate.CodeOutOfStock,
		Message: fmt.Sprintf("no unused game key left in the pool of %s: import keys (POST /admin/v1/keys/%s)", sku, sku)}
}

// ValidGameKey reports whether code can be a key: 1 to MaxKeyLength
// printable ASCII characters, no spaces (keys are typed by buyers and
// compared exactly).
func ValidGameKey(code string) bool {
	if code == "" || len(code) > MaxKeyLength {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] <= ' ' || code[i] > '~' {
			return false
		}
	}
	return true
}

// ImportKeys adds codes to sku's pool, in one write: a code already in any
// pool, or given twice, is a duplicate and changes nothing.
func (l *Ledger) ImportKeys(ctx context.Context, sku string, codes []string) (KeyImport, error) {
	out := KeyImport{SKU: sku}
	if sku == "" {
		return out, storegate.FieldError("a sku is required", "sku")
	}
	fresh := make([]string, 0, len(codes))
	seen := make(map[string]bool, len(codes))
	for i, code := range codes {
		if !ValidGameKey(code) {
			// The key itself is never echoed: its position says which.
			return out, storegate.FieldError(fmt.Sprintf("key %d is not 1 to %d printable characters without spaces", i, MaxKeyLength),
				"keys."+strconv.Itoa(i))
		}
		if seen[code] {
			out.Duplicate++
			continue
		}
		seen[code] = true
		fresh = append(fresh, code)
	}
	err := l.write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		out.Added, out.Available = 0, 0
		now := tx.Now().UnixMicro()
		for start := 0; start < len(fresh); start += engine.MaxRows {
			chunk := fresh[start:min(start+engine.MaxRows, len(fresh))]
			args := make([]any, 0, 4*len(chunk))
			for _, code := range chunk {
				args = append(args, sku, code, KeyAvailable, now)
			}
			res, err := tx.Exec(ctx, `INSERT INTO ledger_keys (sku, code, status, imported_at) VALUES `+engine.Placeholders(4, len(chunk))+`
				ON CONFLICT (code) DO NOTHING`, args...)
			if err != nil {
				return fmt.Errorf("import keys: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			out.Added += n
		}
		return tx.QueryRow(ctx, `SELECT COUNT(*) FROM ledger_keys WHERE sku = ? AND status = ?`, sku, KeyAvailable).Scan(&out.Available)
	})
	if err != nil {
		return KeyImport{SKU: sku}, err
	}
	out.Duplicate += int64(len(fresh)) - out.Added
	return out, nil
}

// KeyPool counts sku's keys by status.
func (l *Ledger) KeyPool(ctx context.Context, sku string) (KeyPool, error) {
	pools, err := l.keyPools(ctx, `WHERE sku = ?`, sku)
	if err != nil {
		return KeyPool{}, err
	}
	if len(pools) == 0 {
		return KeyPool{SKU: sku}, nil
	}
	return pools[0], nil
}

// KeyPools counts every pool's keys by status, sorted by SKU.
func (l *Ledger) KeyPools(ctx context.Context) ([]KeyPool, error) {
	return l.keyPools(ctx, ``)
}

func (l *Ledger) keyPools(ctx context.Context, where string, args ...any) ([]KeyPool, error) {
	rows, err := l.db.Query(ctx, `SELECT sku, status, COUNT(*) FROM ledger_keys `+where+` GROUP BY sku, status ORDER BY sku`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []KeyPool
	for rows.Next() {
		var sku, status string
		var n int64
		if err := rows.Scan(&sku, &status, &n); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].SKU != sku {
			out = append(out, KeyPool{SKU: sku})
		}
		p := &out[len(out)-1]
		switch status {
		case KeyAvailable:
			p.Available = n
		case KeyAssigned:
			p.Assigned = n
		case KeyRevoked:
			p.Revoked = n
		}
	}
	return out, rows.Err()
}

// KeysAvailable counts the available keys of skus, for a check before an
// order is made (a partner's order is refused when its pool is short).
func (l *Ledger) KeysAvailable(ctx context.Context, skus []string) (map[string]int64, error) {
	out := make(map[string]int64, len(skus))
	for _, sku := range skus {
		var n int64
		if err := l.db.QueryRow(ctx, `SELECT COUNT(*) FROM ledger_keys WHERE sku = ? AND status = ?`, sku, KeyAvailable).Scan(&n); err != nil {
			return nil, err
		}
		out[sku] = n
	}
	return out, nil
}

// keySlot names the u-th key of a fulfillment's li-th line's gi-th grant:
// the id of the entitlement that carries it, and the key's claim on it.
func keySlot(id string, li, gi, u int) string { return grantKey(id, li, gi) + "/" + strconv.Itoa(u) }

// takeKeySQL takes the first available key of a pool for a slot. The
// subquery's FOR UPDATE SKIP LOCKED (PostgreSQL) passes over a key another
// transaction is taking, instead of waiting for it and then finding it
// taken; the outer status check keeps the update right even where no row
// lock is taken (SQLite, whose single writer needs none).
const takeKeySQL = `UPDATE ledger_keys SET status = 'assigned', entitlement_id = ?, player_id = ?, transaction_id = ?, assigned_at = ?
	WHERE id = (SELECT id FROM ledger_keys WHERE sku = ? AND status = 'available' ORDER BY id LIMIT 1%s) AND status = 'available'
	RETURNING code`

// takeKey returns the key held for slot, taking one from sku's pool when
// none is: a hold before the grant (Hold) and the grant take it once.
func takeKey(ctx context.Context, tx *engine.Tx, slot, sku, player, txn string) (string, error) {
	var code string
	err := tx.QueryRow(ctx, `SELECT code FROM ledger_keys WHERE entitlement_id = ?`, slot).Scan(&code)
	if err == nil {
		return code, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	lock := ""
	if tx.Dialect() == engine.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	err = tx.QueryRow(ctx, fmt.Sprintf(takeKeySQL, lock), slot, player, txn, tx.Now().UnixMicro(), sku).Scan(&code)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errOutOfStock(sku)
	}
	if err != nil {
		return "", fmt.Errorf("take a key of %s: %w", sku, err)
	}
	return code, nil
}

// takeKeys takes the keys a fulfillment's game_key grants hand out, one
// per unit.
func takeKeys(ctx context.Context, tx *engine.Tx, c storegate.Command) error {
	for li, line := range c.Lines {
		for gi, g := range line.Grants {
			if g.Type != storegate.ItemGameKey {
				continue
			}
			for u := range int(max(g.Quantity, 1)) {
				if _, err := takeKey(ctx, tx, keySlot(c.ID, li, gi, u), g.Item, c.PlayerID, c.ID); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Hold takes, inside tx, what cs's fulfillments for this ledger are paid
// with and will hand out, before they are applied (store.Holder): a
// partner's payment takes its debit from the wallet (debit.go) and holds
// its keys in the transaction that accepts it, so its answer can carry them
// whenever the grant itself is applied. A wallet that cannot cover the
// debit is INSUFFICIENT_FUNDS, a pool too short for the keys OUT_OF_STOCK,
// and the caller undoes tx.
func (l *Ledger) Hold(ctx context.Context, tx *engine.Tx, cs []storegate.Command) error {
	for _, c := range cs {
		if c.Kind != storegate.KindFulfill {
			continue
		}
		if c.Debit != nil {
			if err := l.debitTx(ctx, tx, c); err != nil {
				return err
			}
		}
		if err := takeKeys(ctx, tx, c); err != nil {
			return err
		}
	}
	return nil
}

// entitleKeys grants a game_key grant's units: one entitlement per key,
// each carrying the key taken for it.
func entitleKeys(ctx context.Context, tx *engine.Tx, c storegate.Command, li, gi int, line storegate.Line, g storegate.Grant,
	platform storegate.Platform) ([]string, error) {
	var ids []string
	one := g
	one.Quantity = 1
	for u := range int(max(g.Quantity, 1)) {
		slot := keySlot(c.ID, li, gi, u)
		if _, err := takeKey(ctx, tx, slot, g.Item, c.PlayerID, c.ID); err != nil {
			return nil, err
		}
		if err := entitle(ctx, tx, slot, c, line, one, platform); err != nil {
			return nil, err
		}
		ids = append(ids, slot)
	}
	return ids, nil
}

// revokeKey marks the key an entitlement carries revoked: it is never
// handed out again.
func revokeKey(ctx context.Context, tx *engine.Tx, entitlementID string) error {
	_, err := tx.Exec(ctx, `UPDATE ledger_keys SET status = 'revoked', revoked_at = ? WHERE entitlement_id = ?`,
		tx.Now().UnixMicro(), entitlementID)
	return err
}

const givenKeyColumns = `sku, code, status, player_id, entitlement_id, transaction_id, assigned_at`

// PlayerKeys lists the keys a player was given, newest first, revoked ones
// included.
func (l *Ledger) PlayerKeys(ctx context.Context, playerID string) ([]storegate.GameKey, error) {
	return l.givenKeys(ctx, `player_id = ? ORDER BY assigned_at DESC, id DESC`, playerID)
}

// OrderKeys lists the keys a fulfillment took, in the order of its lines.
func (l *Ledger) OrderKeys(ctx context.Context, transactionID string) ([]storegate.GameKey, error) {
	keys, err := l.givenKeys(ctx, `transaction_id = ?`, transactionID)
	slices.SortFunc(keys, func(a, b storegate.GameKey) int { return compareSlots(a.EntitlementID, b.EntitlementID) })
	return keys, err
}

func (l *Ledger) givenKeys(ctx context.Context, where string, args ...any) ([]storegate.GameKey, error) {
	rows, err := l.db.Query(ctx, `SELECT `+givenKeyColumns+` FROM ledger_keys WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []storegate.GameKey{}
	for rows.Next() {
		var k storegate.GameKey
		var at int64
		if err := rows.Scan(&k.SKU, &k.Key, &k.Status, &k.PlayerID, &k.EntitlementID, &k.TransactionID, &at); err != nil {
			return nil, err
		}
		k.GivenAt = time.UnixMicro(at).UTC()
		if k.Status == KeyAssigned {
			k.Status = StatusActive
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// compareSlots orders slots ("<id>/<line>/<grant>/<unit>") by their
// numbers, so line 10 comes after line 9.
func compareSlots(a, b string) int {
	na, nb := slotNumbers(a), slotNumbers(b)
	return slices.Compare(na, nb)
}

func slotNumbers(slot string) []int {
	var out []int
	end := len(slot)
	for range 3 {
		i := end - 1
		for i >= 0 && slot[i] != '/' {
			i--
		}
		n, _ := strconv.Atoi(slot[i+1 : end])
		out = append([]int{n}, out...)
		if i < 0 {
			break
		}
		end = i
	}
	return out
}
