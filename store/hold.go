package store

import (
	"context"
	"fmt"

	"storegate"
	"storegate/store/engine"
)

// Holder takes, inside a partner payment's transaction, what that payment's
// commands will need when they are applied, whenever that is (the embedded
// ledger's game keys), and what the buyer pays from their wallet (a
// fulfillment's Debit): the payment's answer can then say what the buyer
// gets, and a payment whose holding fails stores nothing.
type Holder interface {
	Hold(ctx context.Context, tx *engine.Tx, cs []storegate.Command) error
}

// holder is the target whose commands a payment holds for.
type holder struct {
	target string
	h      Holder
}

// HoldOnPay makes PayPartnerOrder hold for target's commands through h, in
// its transaction, on every dialect. It is set once, before the first
// payment.
func (db *DB) HoldOnPay(target string, h Holder) {
	db.payHold.Store(&holder{target: target, h: h})
}

// hold runs the holder over cs's commands for its target.
func (db *DB) hold(ctx context.Context, tx *engine.Tx, cs []storegate.Command) error {
	hd := db.payHold.Load()
	if hd == nil {
		for _, c := range cs {
			if c.Debit != nil {
				return errNoWallets(c)
			}
		}
		return nil
	}
	var mine []storegate.Command
	for _, c := range cs {
		switch {
		case c.Target == hd.target:
			mine = append(mine, c)
		case c.Debit != nil:
			return errNoWallets(c)
		}
	}
	if len(mine) == 0 {
		return nil
	}
	return hd.h.Hold(ctx, tx, mine)
}

// errNoWallets refuses a payment whose debit no holder would take: its
// grant would go out unpaid.
func errNoWallets(c storegate.Command) error {
	return &storegate.Error{Code: storegate.CodeInvalidParameter,
		Message: fmt.Sprintf("target %s keeps no wallets: it cannot take a payment in %s", c.Target, c.Debit.Currency), Fields: []string{"payment.currency"}}
}
