package mapping

import (
	"net/mail"

	"storegate"
)

// withReceipt adds to cs, whose first command is a fulfillment, the receipt
// of that fulfillment for target, when there is a target and r names a
// buyer's address. An address that does not parse gets no receipt: the
// order is paid either way, and a receipt that can never be sent would
// only become a dead letter.
func withReceipt(cs []storegate.Command, target string, r storegate.Receipt) []storegate.Command {
	if target == "" || r.To == "" || len(cs) == 0 {
		return cs
	}
	if a, err := mail.ParseAddress(r.To); err != nil || a.Name != "" || a.Address != r.To {
		return cs
	}
	f := cs[0]
	rc := storegate.Command{ID: storegate.ReceiptID(f.ID), Kind: storegate.KindReceipt, Source: f.Source, Target: target,
		PlayerID: f.PlayerID, Platform: f.Platform, OrderRef: f.OrderRef, Lines: f.Lines, Order: f.ID, Receipt: &r,
		CreatedAt: f.CreatedAt}
	return append(cs, rc)
}
