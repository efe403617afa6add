package mapping_test

import (
	"reflect"
	"testing"
	"time"

	"storegate"
	"storegate/mapping"
)

// An order priced in CRYSTALS before a configuration change took the
// crystals' coin SKU out of the catalog is still an order priced in
// CRYSTALS: its payment debits them, never grants the order unpaid.
func TestPartnerPay_DebitsAnOrderInACurrencyTheCatalogNoLongerGrants(t *testing.T) {
	cat, err := mapping.NewCatalog([]mapping.SKU{{SKU: "sword", Type: storegate.ItemDurable, Prices: map[string]int64{"USD": 499}}})
	if err != nil {
		t.Fatal(err)
	}
	o := storegate.PartnerOrder{ID: 7, PlayerID: "p1", Currency: "CRYSTALS", Amount: 500,
		Lines: []storegate.PricedLine{{SKU: "sword", Quantity: 1, UnitPrice: 500, Amount: 500}}}
	p, err := mapping.PartnerPay(mapping.PartnerSource{Name: "pa", Target: "ledger"}, o, "bank-1", cat, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if want := (&storegate.Debit{Currency: "CRYSTALS", Amount: 500}); len(p.Commands) != 1 || !reflect.DeepEqual(p.Commands[0].Debit, want) {
		t.Errorf("commands %+v, want one fulfillment debiting %+v", p.Commands, want)
	}
}
