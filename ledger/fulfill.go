package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"storegate"
	"storegate/store/engine"
)

// fulfillTx is Fulfill's write, inside tx.
func (l *Ledger) fulfillTx(ctx context.Context, tx *engine.Tx, c storegate.Command) (Result, error) {
	out, err := l.fulfillMany(ctx, tx, []storegate.Command{c})
	if err != nil {
		return Result{}, err
	}
	return out[0], nil
}

// fulfillAll applies fulfillments inside tx, in order, all or none (see
// Apply). The store's committer hands the ledger every grant of a batch of
// accepts at once, so a grant costs a share of six statements instead of
// four of its own.
func (l *Ledger) fulfillAll(ctx context.Context, tx *engine.Tx, cs []storegate.Command) storegate.Outcome {
	for _, c := range cs {
		if err := validate(c); err != nil {
			return outcome(err)
		}
	}
	_, err := l.fulfillMany(ctx, tx, cs)
	return outcome(err)
}

// credited is one currency grant of a fulfillment being applied.
type credited struct {
	cmd    int // index in the fulfillments
	entry  entry
	wallet walletKey
	// the wallet's balance and the currency's total after this credit
	balanceAfter, totalAfter int64
}

type walletKey struct {
	player, currency string
	platform         storegate.Platform
}

// currencyKey is a player's currency, across platforms.
type currencyKey struct{ player, currency string }

// fulfillMany applies fulfillments in order. A transaction id applied before
// is replayed (its first result, nothing written), and so is a second copy
// of one in cs. Wallets move by one
// statement for all grants (an increment, so concurrent writers on
// PostgreSQL cannot lose an update), and the history entries' balances
// after each grant are worked out from the balances it returns, as if the
// grants had been applied one after the other.
func (l *Ledger) fulfillMany(ctx context.Context, tx *engine.Tx, cs []storegate.Command) ([]Result, error) {
	out := make([]Result, len(cs))
	priors, err := lookupResults(ctx, tx, cs)
	if err != nil {
		return nil, err
	}
	var credits []credited
	var players []string
	applied := map[string]int{} // the index of each new fulfillment
	var copies [][2]int         // a second copy of a new one: its index, the first's
	for i, c := range cs {
		if prior, ok := priors[c.ID]; ok {
			if err := json.Unmarshal([]byte(prior), &out[i]); err != nil {
				return nil, err
			}
			out[i].Replayed = true
			continue
		}
		if first, ok := applied[c.ID]; ok {
			// Applied one by one, the copy would replay the first.
			copies = append(copies, [2]int{i, first})
			out[i].Replayed = true
			continue
		}
		applied[c.ID] = i
		if !slices.Contains(players, c.PlayerID) {
			players = append(players, c.PlayerID)
		}
		out[i] = Result{TransactionID: c.ID, Kind: storegate.KindFulfill}
		if c.Debit != nil {
			// Taken with the payment (Hold), so usually found done; a grant
			// applied without that hold is still never unpaid.
			if err := l.debitTx(ctx, tx, c); err != nil {
				return nil, err
			}
		}
		platform := platformOf(c)
		for li, line := range c.Lines {
			for gi, g := range line.Grants {
				key := grantKey(c.ID, li, gi)
				switch {
				case g.Currency != "":
					credits = append(credits, credited{cmd: i, wallet: walletKey{c.PlayerID, g.Currency, platform},
						entry: entry{key: key, kind: string(storegate.KindFulfill), player: c.PlayerID, currency: g.Currency,
							platform: platform, amount: g.Amount, reason: "fulfill", txn: c.ID, source: c.Source, orderRef: c.OrderRef}})
				case g.Item != "" && g.Type == storegate.ItemGameKey:
					ids, err := entitleKeys(ctx, tx, c, li, gi, line, g, platform)
					if err != nil {
						return nil, err
					}
					out[i].Entitlements = append(out[i].Entitlements, ids...)
				case g.Item != "":
					if err := entitle(ctx, tx, key, c, line, g, platform); err != nil {
						return nil, err
					}
					out[i].Entitlements = append(out[i].Entitlements, key)
				default:
					return nil, storegate.FieldError("grant names neither a currency nor an item", fmt.Sprintf("lines.%d.grants.%d", li, gi))
				}
			}
		}
	}
	if len(applied) == 0 {
		return out, nil
	}
	if err := l.addPlayers(ctx, tx, players); err != nil {
		return nil, err
	}
	if err := creditAll(ctx, tx, credits, out); err != nil {
		return nil, err
	}
	var txns []txn
	var results []*Result
	for i, c := range cs {
		if out[i].Replayed {
			continue
		}
		// The command is kept so a full revoke knows the lines it undoes.
		txns = append(txns, txn{id: c.ID, kind: string(storegate.KindFulfill), player: c.PlayerID,
			request: fulfillment{Platform: platformOf(c), Lines: c.Lines}})
		results = append(results, &out[i])
	}
	if err := recordMany(ctx, tx, txns, results); err != nil {
		return nil, err
	}
	for _, c := range copies {
		out[c[0]] = out[c[1]]
		out[c[0]].Replayed = true
	}
	tx.OnCommit(func() { // only once committed
		for _, p := range players {
			l.known.Store(p, true)
		}
	})
	return out, nil
}

// lookupResults reads the results of the fulfillments applied before.
func lookupResults(ctx context.Context, tx *engine.Tx, cs []storegate.Command) (map[string]string, error) {
	out := map[string]string{}
	for start := 0; start < len(cs); start += engine.MaxRows {
		chunk := cs[start:min(start+engine.MaxRows, len(cs))]
		args := make([]any, len(chunk))
		for i, c := range chunk {
			args[i] = c.ID
		}
		rows, err := tx.Query(ctx, pointLookups(`SELECT transaction_id, result FROM ledger_transactions WHERE transaction_id = ?`, len(chunk)), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, result string
			if err := rows.Scan(&id, &result); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = result
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// pointLookups is query, a lookup by key, repeated n times with UNION ALL.
// Not an IN list or a join: PostgreSQL may plan those as a sequential scan
// when a table's statistics are stale (a table growing fast under load),
// while an equality on a key is always an index lookup.
func pointLookups(query string, n int) string {
	return strings.Repeat(query+" UNION ALL ", n-1) + query
}

// addPlayers records that players exist, those not yet known to this
// process, in sorted order, so two PostgreSQL transactions that each add
// one batch's new players wait for each other in the same order. (Group
// commit can put several batches in one transaction, which can still close
// a cycle: the store runs a write that lost a deadlock again.)
func (l *Ledger) addPlayers(ctx context.Context, tx *engine.Tx, players []string) error {
	var args []any
	now := tx.Now().UnixMicro()
	for _, p := range slices.Sorted(slices.Values(players)) {
		if _, known := l.known.Load(p); !known {
			args = append(args, p, now)
		}
	}
	for start := 0; start < len(args); start += 2 * engine.MaxRows {
		chunk := args[start:min(start+2*engine.MaxRows, len(args))]
		if _, err := tx.Exec(ctx, `INSERT INTO ledger_players (player_id, created_at) VALUES `+engine.Placeholders(2, len(chunk)/2)+`
			ON CONFLICT (player_id) DO NOTHING`, chunk...); err != nil {
			return err
		}
	}
	return nil
}

// creditAll moves the wallets by every credit, appends the history entries
// and adds each credit to its fulfillment's result.
func creditAll(ctx context.Context, tx *engine.Tx, credits []credited, out []Result) error {
	if len(credits) == 0 {
		return nil
	}
	// One row per wallet, in key order: PostgreSQL locks the rows in the
	// order they come, so two transactions each moving one batch's wallets
	// wait for each other in the same order (see addPlayers for the rest).
	sums := map[walletKey]int64{}
	for _, c := range credits {
		sums[c.wallet] += c.entry.amount
	}
	keys := make([]walletKey, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b walletKey) int {
		return strings.Compare(a.player+"\x00"+a.currency+"\x00"+string(a.platform), b.player+"\x00"+b.currency+"\x00"+string(b.platform))
	})
	balance, err := moveWallets(ctx, tx, keys, sums)
	if err != nil {
		return err
	}
	total, err := totals(ctx, tx, keys)
	if err != nil {
		return err
	}
	// balance and total are after every credit; walking the credits
	// backwards gives each its own balance after.
	for i := len(credits) - 1; i >= 0; i-- {
		c := &credits[i]
		t := currencyKey{c.wallet.player, c.wallet.currency}
		c.balanceAfter, c.totalAfter = balance[c.wallet], total[t]
		balance[c.wallet] -= c.entry.amount
		total[t] -= c.entry.amount
	}
	for _, c := range credits {
		out[c.cmd].Credits = append(out[c.cmd].Credits, CreditResult{Currency: c.entry.currency, Platform: c.entry.platform,
			Amount: c.entry.amount, BalanceAfter: c.balanceAfter})
	}
	return appendEntries(ctx, tx, credits)
}

// moveWallets adds sums to the wallets and returns their balances after.
func moveWallets(ctx context.Context, tx *engine.Tx, keys []walletKey, sums map[walletKey]int64) (map[walletKey]int64, error) {
	after := make(map[walletKey]int64, len(keys))
	now := tx.Now().UnixMicro()
	for start := 0; start < len(keys); start += engine.MaxRows {
		chunk := keys[start:min(start+engine.MaxRows, len(keys))]
		args := make([]any, 0, 5*len(chunk))
		for _, k := range chunk {
			args = append(args, k.player, k.currency, string(k.platform), sums[k], now)
		}
		rows, err := tx.Query(ctx, `INSERT INTO ledger_wallets (player_id, currency, platform, balance, updated_at)
			VALUES `+engine.Placeholders(5, len(chunk))+`
			ON CONFLICT (player_id, currency, platform) DO UPDATE SET balance = ledger_wallets.balance + excluded.balance, updated_at = excluded.updated_at
			RETURNING player_id, currency, platform, balance`, args...)
		if err != nil {
			return nil, fmt.Errorf("move wallets: %w", err)
		}
		for rows.Next() {
			var k walletKey
			var platform string
			var b int64
			if err := rows.Scan(&k.player, &k.currency, &platform, &b); err != nil {
				rows.Close()
				return nil, err
			}
			k.platform = storegate.Platform(platform)
			after[k] = b
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("move wallets: %w", err)
		}
	}
	return after, nil
}

// totals reads the totals across platforms of the wallets' currencies.
func totals(ctx context.Context, tx *engine.Tx, keys []walletKey) (map[currencyKey]int64, error) {
	out := map[currencyKey]int64{}
	var args []any
	for i, k := range keys {
		if i > 0 && keys[i-1].player == k.player && keys[i-1].currency == k.currency {
			continue // keys are sorted: the same currency on another platform
		}
		args = append(args, k.player, k.currency)
	}
	for start := 0; start < len(args); start += 2 * engine.MaxRows {
		chunk := args[start:min(start+2*engine.MaxRows, len(args))]
		rows, err := tx.Query(ctx, pointLookups(`SELECT player_id, currency, CAST(SUM(balance) AS BIGINT) FROM ledger_wallets
			WHERE player_id = ? AND currency = ? GROUP BY player_id, currency`, len(chunk)/2), chunk...)
		if err != nil {
			return nil, fmt.Errorf("read totals: %w", err)
		}
		for rows.Next() {
			var player, currency string
			var sum int64
			if err := rows.Scan(&player, &currency, &sum); err != nil {
				rows.Close()
				return nil, err
			}
			out[currencyKey{player, currency}] = sum
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read totals: %w", err)
		}
	}
	return out, nil
}

const entryColumns = `(idempotency_key, kind, player_id, currency, platform, amount, balance_after, total_after,
	reason, transaction_id, source, order_ref, reverses, actor, created_at)`

// appendEntries appends the credits' history entries, in order.
func appendEntries(ctx context.Context, tx *engine.Tx, credits []credited) error {
	now := tx.Now().UnixMicro()
	for start := 0; start < len(credits); start += engine.MaxRows {
		chunk := credits[start:min(start+engine.MaxRows, len(credits))]
		args := make([]any, 0, 15*len(chunk))
		for _, c := range chunk {
			e := c.entry
			args = append(args, e.key, e.kind, e.player, e.currency, string(e.platform), e.amount, c.balanceAfter, c.totalAfter,
				e.reason, e.txn, e.source, e.orderRef, e.reverses, e.actor, now)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ledger_entries `+entryColumns+` VALUES `+engine.Placeholders(15, len(chunk)), args...); err != nil {
			return fmt.Errorf("append entries: %w", err)
		}
	}
	return nil
}

// recordMany is record for many transactions, results[i] being txns[i]'s.
func recordMany(ctx context.Context, tx *engine.Tx, txns []txn, results []*Result) error {
	now := tx.Now().UnixMicro()
	for start := 0; start < len(txns); start += engine.MaxRows {
		end := min(start+engine.MaxRows, len(txns))
		args := make([]any, 0, 8*(end-start))
		for i := start; i < end; i++ {
			t := txns[i]
			res, err := json.Marshal(results[i])
			if err != nil {
				return err
			}
			req, err := json.Marshal(t.request)
			if err != nil {
				return err
			}
			args = append(args, t.id, t.kind, t.player, t.reverses, string(res), string(req), t.hash, now)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ledger_transactions (transaction_id, kind, player_id, reverses, result, request, request_hash, created_at)
			VALUES `+engine.Placeholders(8, end-start), args...); err != nil {
			return err
		}
	}
	return nil
}
