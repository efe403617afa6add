package webhooks

import (
	"context"
	"fmt"

	"storegate"
)

// Orders priced in a virtual currency (a coin SKU's currency, CRYSTALS):
// the player pays from their wallet. An order the wallet cannot cover is
// refused when it is made (409 INSUFFICIENT_FUNDS, field currency), a
// courtesy to the partner; the payment takes the debit for good, in the
// transaction that accepts it (store.DB.HoldOnPay), and is refused the same
// way, storing nothing, when the balance fell short since.

// Wallets are the targets that keep players' wallets (the embedded ledger),
// by target name: only they can sell in a virtual currency.
type Wallets interface {
	// Balance is the player's total in currency across platforms.
	Balance(ctx context.Context, playerID, currency string) (int64, error)
}

// checkFunds refuses an order in a virtual currency that the player's
// wallet cannot cover now, or whose source's target keeps no wallets.
func (p *partnerAPI) checkFunds(ctx context.Context, src *PartnerSource, o storegate.PartnerOrder, playerID string) error {
	if !p.deps.Catalog.Virtual(o.Currency) {
		return nil
	}
	w := p.deps.Wallets[src.Target]
	if w == nil {
		return storegate.FieldError(fmt.Sprintf("this partner's target keeps no wallets: it cannot sell in %s", o.Currency), "currency")
	}
	balance, err := w.Balance(ctx, playerID, o.Currency)
	if err != nil {
		return storegate.Unavailable(err)
	}
	if balance < o.Amount {
		return &storegate.Error{Code: storegate.CodeInsufficientFunds,
			Message: fmt.Sprintf("the %s balance is %d, less than the order's %d", o.Currency, balance, o.Amount), Fields: []string{"currency"}}
	}
	return nil
}
