package mapping_test

import (
	"encoding/json"
	"slices"
	"testing"

	"storegate"
	"storegate/mapping"
)

// A receipt follows the fulfillment of a paid order whose buyer's address is
// known, when receipts are on; it carries no game key, only what the
// e-mail needs to find them (the fulfillment's id).
func TestReceipts(t *testing.T) {
	cat, err := mapping.NewCatalog(demo)
	if err != nil {
		t.Fatal(err)
	}
	const (
		paid        = `{"notification_type":"order_paid","order":{"id":7},"user":{"external_id":"p1","email":"b@example.com"},"items":[{"sku":"sword","quantity":1}]}`
		paidNoMail  = `{"notification_type":"order_paid","order":{"id":7},"user":{"external_id":"p1"},"items":[{"sku":"sword","quantity":1}]}`
		paidBadMail = `{"notification_type":"order_paid","order":{"id":7},"user":{"external_id":"p1","email":"Bob <b@example.com>"},"items":[{"sku":"sword","quantity":1}]}`
		payment     = `{"notification_type":"payment","user":{"id":"p1","email":"b@example.com"},"transaction":{"id":9},"purchase":{"virtual_currency":{"sku":"crystals_100","quantity":2}}}`
		refund      = `{"notification_type":"refund","user":{"id":"p1","email":"b@example.com"},"transaction":{"id":9}}`
	)
	for _, tc := range []struct {
		name, grantOn, receipts, body string
		want                          []string // command ids
	}{
		{"order_paid with an address", "order_paid", "mail", paid, []string{"xsolla.xs.order.7", "xsolla.xs.order.7.receipt"}},
		{"receipts off", "order_paid", "", paid, []string{"xsolla.xs.order.7"}},
		{"no address", "order_paid", "mail", paidNoMail, []string{"xsolla.xs.order.7"}},
		{"not a bare address", "order_paid", "mail", paidBadMail, []string{"xsolla.xs.order.7"}},
		{"payment in payment mode", "payment", "mail", payment, []string{"xsolla.xs.txn.9", "xsolla.xs.txn.9.receipt"}},
		{"a refund gets none", "payment", "mail", refund, []string{"xsolla.xs.txn.9.revoke"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n mapping.XsollaNotification
			if err := json.Unmarshal([]byte(tc.body), &n); err != nil {
				t.Fatal(err)
			}
			p, err := mapping.Xsolla(mapping.XsollaSource{Name: "xs", Target: "ledger", GrantOn: tc.grantOn, Receipts: tc.receipts},
				&n, cat, []byte(tc.body), now)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range p.Commands {
				ids = append(ids, c.ID)
			}
			if !slices.Equal(ids, tc.want) {
				t.Fatalf("commands %v, want %v", ids, tc.want)
			}
			if len(p.Commands) < 2 {
				return
			}
			f, r := p.Commands[0], p.Commands[1]
			if r.Kind != storegate.KindReceipt || r.Target != tc.receipts || r.Order != f.ID || storegate.OrderOf(r) != f.ID ||
				r.PlayerID != f.PlayerID || r.Receipt == nil || r.Receipt.To != "b@example.com" || len(r.Lines) != len(f.Lines) {
				t.Errorf("receipt %+v of %+v", r, f)
			}
		})
	}
}

func TestReceipts_PartnerPayment(t *testing.T) {
	cat, err := mapping.NewCatalog(demo)
	if err != nil {
		t.Fatal(err)
	}
	o := storegate.PartnerOrder{ID: 3, PlayerID: "p1", Email: "b@example.com", Currency: "USD", Amount: 3998,
		Lines: []storegate.PricedLine{{SKU: "sword", Quantity: 1}}}
	p, err := mapping.PartnerPay(mapping.PartnerSource{Name: "pa", Target: "ledger", Receipts: "mail"}, o, "bank-1", cat, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Commands) != 2 {
		t.Fatalf("commands %+v", p.Commands)
	}
	r := p.Commands[1]
	want := storegate.Receipt{To: "b@example.com", Amount: "39.98", Currency: "USD"}
	if r.ID != "partner.pa.order.3.receipt" || r.Order != "partner.pa.order.3" || r.Receipt == nil || *r.Receipt != want {
		t.Errorf("receipt %+v (%+v)", r, r.Receipt)
	}
	o.Email = ""
	if p, _ := mapping.PartnerPay(mapping.PartnerSource{Name: "pa", Target: "ledger", Receipts: "mail"}, o, "bank-1", cat, now); len(p.Commands) != 1 {
		t.Errorf("an order without an address got %d commands", len(p.Commands))
	}
}
