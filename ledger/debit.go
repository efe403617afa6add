package ledger

import (
	"context"
	"fmt"

	"storegate"
	"storegate/store/engine"
)

// Orders paid in a virtual currency. A partner order priced in CRYSTALS is
// paid from the player's wallet: its fulfillment carries a Debit, which
// Hold takes in the payment's own transaction, a spend recorded under
// storegate.DebitID(fulfillment) so that it is taken once however often the
// payment is notified; the grant follows when it is applied. The revoke of
// the whole fulfillment credits the debit back, once (refundID).

// reasonPayment is the reason of an order's debit in the history.
const reasonPayment = "payment"

// refundID is the transaction id of the credit that gives a debit back.
func refundID(debitID string) string { return debitID + ".refund" }

// debitTx takes a fulfillment's Debit from the player's wallet inside tx,
// across platforms in the spend order, as a game server's spend would; a
// debit taken before is not taken again. A wallet that cannot cover it is
// INSUFFICIENT_FUNDS, and the caller undoes tx.
func (l *Ledger) debitTx(ctx context.Context, tx *engine.Tx, c storegate.Command) error {
	d := c.Debit
	id := storegate.DebitID(c.ID)
	if p, err := lookup(ctx, tx, id); err != nil || p != nil {
		return err
	}
	if d.Currency == "" || d.Amount <= 0 || d.Amount > MaxAmount {
		return storegate.FieldError(fmt.Sprintf("a debit needs a currency and an amount between 1 and %d", int64(MaxAmount)), "payment.amount")
	}
	bal, total, err := balances(ctx, tx, c.PlayerID, d.Currency)
	if err != nil {
		return err
	}
	// On PostgreSQL the lock above may have waited for another writer
	// taking this very debit (the same payment held on another replica):
	// read again now that it has committed, rather than refuse a debit
	// already taken as one the wallet cannot cover.
	if p, err := lookup(ctx, tx, id); err != nil || p != nil {
		return err
	}
	debits, err := l.planSpend(Spend{PlayerID: c.PlayerID, Currency: d.Currency, Amount: d.Amount}, bal, total)
	if err != nil {
		return err
	}
	out := SpendResult{TransactionID: id, Currency: d.Currency, Amount: d.Amount, Debits: []CreditResult{}}
	for _, dp := range debits {
		m, err := move(ctx, tx, entry{key: id + "/" + string(dp.Platform), kind: kindSpend, player: c.PlayerID, currency: d.Currency,
			platform: dp.Platform, amount: -dp.Amount, reason: reasonPayment, txn: id, source: c.Source, orderRef: c.OrderRef})
		if err != nil {
			return err
		}
		out.Debits = append(out.Debits, CreditResult{Currency: d.Currency, Platform: dp.Platform, Amount: -dp.Amount, BalanceAfter: m.balanceAfter})
		out.Balance = m.total
	}
	return record(ctx, tx, txn{id: id, kind: kindSpend, player: c.PlayerID, request: d}, &out)
}

// refundTx credits back the debit that paid for the fulfillment c revokes,
// if one did and it was not credited back before: each platform's debit
// entry is reversed by a revoke entry on the same platform. The entries
// are the refund's own transaction's, never the revoke's, so that what is
// left to claw back of the fulfillment (remaining) never counts them. The
// credits are added to out's.
func refundTx(ctx context.Context, tx *engine.Tx, c storegate.Command, out *Result) error {
	debitID := storegate.DebitID(c.Reverses)
	if p, err := lookup(ctx, tx, debitID); err != nil || p == nil {
		return err
	}
	id := refundID(debitID)
	if p, err := lookup(ctx, tx, id); err != nil || p != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT id, currency, platform, amount FROM ledger_entries WHERE transaction_id = ? AND player_id = ? AND kind = ?
		ORDER BY id`, debitID, c.PlayerID, kindSpend)
	if err != nil {
		return err
	}
	type debit struct {
		entry    int64
		currency string
		platform storegate.Platform
		amount   int64
	}
	var debits []debit
	for rows.Next() {
		var d debit
		var platform string
		if err := rows.Scan(&d.entry, &d.currency, &platform, &d.amount); err != nil {
			rows.Close()
			return err
		}
		d.platform = storegate.Platform(platform)
		debits = append(debits, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var credits []CreditResult
	for _, d := range debits {
		m, err := move(ctx, tx, entry{key: id + "/" + string(d.platform), kind: string(storegate.KindRevoke), player: c.PlayerID, currency: d.currency,
			platform: d.platform, amount: -d.amount, reason: reason(c), txn: id, source: c.Source, orderRef: c.OrderRef, reverses: &d.entry})
		if err != nil {
			return err
		}
		credits = append(credits, CreditResult{Currency: d.currency, Platform: d.platform, Amount: -d.amount, BalanceAfter: m.balanceAfter})
	}
	out.Credits = append(out.Credits, credits...)
	return record(ctx, tx, txn{id: id, kind: string(storegate.KindRevoke), player: c.PlayerID, reverses: debitID}, credits)
}

// Balance is a player's total in currency across platforms, for a check
// before an order is made (a partner's order in a virtual currency is
// refused when the wallet is short). A negative total is returned as it is:
// it covers nothing.
func (l *Ledger) Balance(ctx context.Context, playerID, currency string) (int64, error) {
	var total int64
	err := l.db.QueryRow(ctx, `SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM ledger_wallets WHERE player_id = ? AND currency = ?`,
		playerID, currency).Scan(&total)
	return total, err
}
