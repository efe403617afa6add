package mapping_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"storegate"
	"storegate/mapping"
)

func TestAmounts(t *testing.T) {
	for _, tc := range []struct {
		number, currency string
		minor            int64
		ok               bool
	}{
		{"1.99", "USD", 199, true},
		{"199e-2", "USD", 199, true},
		{"2", "USD", 200, true},
		{"1.990", "USD", 199, true},
		{"1.991", "USD", 0, false},
		{"150", "JPY", 150, true},
		{"150.5", "JPY", 0, false},
		{"1.005", "KWD", 1005, true},
		{"1e400", "USD", 0, false},
		{"abc", "USD", 0, false},
		{"500", "CRYSTALS", 500, true},
		{"500.0", "CRYSTALS", 500, true},
		{"0.5", "CRYSTALS", 0, false},
	} {
		got, ok := mapping.ParseAmount(tc.number, tc.currency)
		if got != tc.minor || ok != tc.ok {
			t.Errorf("ParseAmount(%s %s) = %d, %v; want %d, %v", tc.number, tc.currency, got, ok, tc.minor, tc.ok)
		}
	}
	for _, tc := range []struct {
		minor    int64
		currency string
		want     string
	}{{199, "USD", "1.99"}, {5, "USD", "0.05"}, {0, "EUR", "0.00"}, {150, "JPY", "150"}, {1005, "KWD", "1.005"}, {-250, "USD", "-2.50"}, {500, "CRYSTALS", "500"}} {
		if got := mapping.FormatAmount(tc.minor, tc.currency); got != tc.want {
			t.Errorf("FormatAmount(%d %s) = %q, want %q", tc.minor, tc.currency, got, tc.want)
		}
	}
}

func TestPricePartnerOrder(t *testing.T) {
	cat, err := mapping.NewCatalog([]mapping.SKU{
		{SKU: "gems", Type: storegate.ItemCurrency, Currency: "GEMS", Amount: 10, Prices: map[string]int64{"USD": 333, "EUR": 300}},
		{SKU: "sword", Type: storegate.ItemDurable, Prices: map[string]int64{"USD": 1000}},
		{SKU: "free", Type: storegate.ItemDurable},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := mapping.PartnerPricing{Currencies: []string{"USD"}, Prices: map[string]map[string]int64{"sword": {"USD": 900}},
		Discounts: map[string]int64{"*": 15, "sword": 0}}
	o, err := mapping.PricePartnerOrder(cat, p, "USD", "", []mapping.PartnerItem{{SKU: "gems", Quantity: 3}, {SKU: "sword", Quantity: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// 3 × 3.33 = 9.99 less 15% (1.4985 → 1.50) = 8.49; the sword at the partner's 9.00.
	if o.Amount != 849+900 || o.AmountWithoutDiscount != 999+900 || o.Lines[0].Amount != 849 || o.Lines[1].UnitPrice != 900 {
		t.Fatalf("order = %+v", o)
	}
	for _, tc := range []struct {
		currency string
		items    []mapping.PartnerItem
		field    string
	}{
		{"EUR", []mapping.PartnerItem{{SKU: "gems", Quantity: 1}}, "currency"},
		{"USD", []mapping.PartnerItem{{SKU: "ghost", Quantity: 1}}, "items.0.sku"},
		{"USD", []mapping.PartnerItem{{SKU: "gems", Quantity: 1}, {SKU: "free", Quantity: 1}}, "items.1.sku"},
		{"USD", []mapping.PartnerItem{{SKU: "gems", Quantity: mapping.MaxQuantity + 1}}, "items.0.quantity"},
	} {
		_, err := mapping.PricePartnerOrder(cat, p, tc.currency, "", tc.items)
		var e *storegate.Error
		if !errors.As(err, &e) || e.Code != storegate.CodeInvalidParameter || !reflect.DeepEqual(e.Fields, []string{tc.field}) {
			t.Errorf("%s %+v: %v, want INVALID_PARAMETER on %s", tc.currency, tc.items, err, tc.field)
		}
	}
	entries := mapping.PartnerCatalog(cat, mapping.PartnerPricing{}, "")
	if len(entries) != 2 || len(entries[0].Prices) != 2 || entries[0].Prices[0].Currency != "EUR" {
		t.Fatalf("catalog without partner settings = %+v, want gems (EUR, USD) and sword", entries)
	}
}

func TestPricePartnerOrder_TaxesAndBonuses(t *testing.T) {
	cat, err := mapping.NewCatalog([]mapping.SKU{
		{SKU: "gems", Type: storegate.ItemCurrency, Currency: "GEMS", Amount: 10, Name: "Gems", Prices: map[string]int64{"USD": 1000, "JPY": 1500}},
		{SKU: "sword", Type: storegate.ItemDurable, Prices: map[string]int64{"USD": 499, "GEMS": 50}},
		{SKU: "cape", Type: storegate.ItemDurable, Name: "Cape", Prices: map[string]int64{"GEMS": 30}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := mapping.PartnerPricing{Discounts: map[string]int64{"gems": 10},
		Taxes: mapping.PartnerTaxes{Countries: map[string]int64{"DE": 190_000, "US": 88_750}, Currencies: map[string]int64{"USD": 50_000, "GEMS": 100_000}},
		Bonuses: []mapping.PartnerBonus{
			{SKU: "cape", Quantity: 1, MinAmount: map[string]int64{"USD": 1800}},
			{SKU: "cape", Quantity: 2, WithSKU: "sword"},
			{SKU: "gems", Quantity: 1, MinAmount: map[string]int64{"USD": 100}, WithSKU: "sword"},
		}}
	type line struct {
		sku    string
		qty    int64
		amount int64
		bonus  bool
	}
	for _, tc := range []struct {
		name              string
		country, currency string
		items             []mapping.PartnerItem
		rate, tax, amount int64
		lines             []line
	}{
		{"the country's rate on the discounted amount, rounded half up", "DE", "USD", []mapping.PartnerItem{{SKU: "gems", Quantity: 1}},
			190_000, 171, 900 + 171, []line{{"gems", 1, 900, false}}},
		{"a country without a rate falls back to the currency's", "FR", "USD", []mapping.PartnerItem{{SKU: "gems", Quantity: 1}},
			50_000, 45, 945, []line{{"gems", 1, 900, false}}},
		{"no country: the currency's rate", "", "USD", []mapping.PartnerItem{{SKU: "sword", Quantity: 1}},
			50_000, 25, 524, []line{{"sword", 1, 499, false}, {"cape", 2, 0, true}, {"gems", 1, 0, true}}},
		{"a fractional rate", "US", "USD", []mapping.PartnerItem{{SKU: "gems", Quantity: 1}},
			88_750, 80, 980, []line{{"gems", 1, 900, false}}},
		{"no rate at all: no tax", "", "JPY", []mapping.PartnerItem{{SKU: "gems", Quantity: 1}},
			0, 0, 1350, []line{{"gems", 1, 1350, false}}},
		{"the minimum reached, before tax: one bonus line per sku", "DE", "USD", []mapping.PartnerItem{{SKU: "gems", Quantity: 2}},
			190_000, 342, 1800 + 342, []line{{"gems", 2, 1800, false}, {"cape", 1, 0, true}}},
		{"both rules of one sku add up", "", "USD", []mapping.PartnerItem{{SKU: "gems", Quantity: 2}, {SKU: "sword", Quantity: 1}},
			50_000, 115, 2299 + 115, []line{{"gems", 2, 1800, false}, {"sword", 1, 499, false}, {"cape", 3, 0, true}, {"gems", 1, 0, true}}},
		{"a minimum in another currency never qualifies", "", "JPY", []mapping.PartnerItem{{SKU: "gems", Quantity: 9}},
			0, 0, 12150, []line{{"gems", 9, 12150, false}}},
		{"an empty list prices to zero", "DE", "USD", nil, 190_000, 0, 0, nil},
		{"a virtual currency: never the country's rate, only its own, in whole units", "DE", "GEMS", []mapping.PartnerItem{{SKU: "sword", Quantity: 1}},
			100_000, 5, 55, []line{{"sword", 1, 50, false}, {"cape", 2, 0, true}}},
		{"a virtual currency, another country: still its own rate", "US", "GEMS", []mapping.PartnerItem{{SKU: "cape", Quantity: 1}},
			100_000, 3, 33, []line{{"cape", 1, 30, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := mapping.PricePartnerOrder(cat, p, tc.currency, tc.country, tc.items)
			if err != nil {
				t.Fatal(err)
			}
			var got []line
			for _, l := range o.Lines {
				got = append(got, line{l.SKU, l.Quantity, l.Amount, l.Bonus})
			}
			if o.TaxRate != tc.rate || o.Tax != tc.tax || o.Amount != tc.amount || !reflect.DeepEqual(got, tc.lines) {
				t.Fatalf("rate %d, tax %d, amount %d, lines %v; want %d, %d, %d, %v", o.TaxRate, o.Tax, o.Amount, got, tc.rate, tc.tax, tc.amount, tc.lines)
			}
		})
	}
}

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		text string
		rate int64
		ok   bool
		back string
	}{
		{"19", 190_000, true, "19"}, {"8.875", 88_750, true, "8.875"}, {"0", 0, true, "0"}, {"100", 1_000_000, true, "100"},
		{"7.70", 77_000, true, "7.7"}, {"0.0001", 1, true, "0.0001"},
		{"0.00001", 0, false, ""}, {"-1", 0, false, ""}, {"1e1", 0, false, ""}, {"1/2", 0, false, ""}, {"x", 0, false, ""},
	} {
		rate, ok := mapping.ParsePercent(tc.text)
		if rate != tc.rate || ok != tc.ok {
			t.Errorf("ParsePercent(%q) = %d, %v; want %d, %v", tc.text, rate, ok, tc.rate, tc.ok)
		}
		if ok && mapping.FormatPercent(rate) != tc.back {
			t.Errorf("FormatPercent(%d) = %q, want %q", rate, mapping.FormatPercent(rate), tc.back)
		}
	}
	if got := mapping.Tax(math.MaxInt64, 1_000_000); got != math.MaxInt64 {
		t.Errorf("Tax of the largest amount at 100%% = %d, want it exact", got)
	}
}

func storePlan(t *testing.T, typ, platform string, order mapping.StoreOrder) mapping.Plan {
	t.Helper()
	cat, err := mapping.NewCatalog([]mapping.SKU{{SKU: "gems", Type: storegate.ItemCurrency, Currency: "GEMS", Amount: 10,
		Products: map[string]string{"Steam": "1", "epic": "e", "xbox": "x", "playstation": "p", "twitch": "t"}}})
	if err != nil {
		t.Fatal(err)
	}
	product := map[string]string{"steam": "1", "epic": "e", "xbox": "x", "playstation": "p", "twitch": "t"}[platform]
	p, err := mapping.Store(mapping.StoreSource{Name: "st", Target: "ledger"}, &mapping.StoreEvent{Type: typ, Platform: platform,
		PlayerID: "p1", Order: order, Items: []mapping.StoreItem{{ProductID: product, Quantity: 2}}}, cat, now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStore_Plans(t *testing.T) {
	type cmd struct {
		id, reverses, order string
		kind                storegate.Kind
	}
	steam := mapping.StoreOrder{OrderID: "42", TransID: "7"}
	epic := mapping.StoreOrder{EntitlementID: "E1"}
	xbox := mapping.StoreOrder{XboxOrderID: "O", LineItemID: "L"}
	for _, tc := range []struct {
		typ, platform string
		order         mapping.StoreOrder
		key, ref      string
		cmds          []cmd
		note          storegate.OrderStatus
	}{
		{"purchase", "steam", steam, "purchase:steam.42", "steam order 42 (transid 7)", []cmd{{"steam.st.42", "", "", storegate.KindFulfill}}, ""},
		{"refund", "steam", steam, "refund:steam.42", "steam order 42 (transid 7)", nil, storegate.OrderRefunded},
		{"chargeback_reversed", "steam", steam, "chargeback_reversed:steam.42", "steam order 42 (transid 7)", nil, storegate.OrderGranted},
		{"refund", "twitch", mapping.StoreOrder{EntitlementID: "T"}, "refund:twitch.T", "twitch entitlement T", nil, storegate.OrderRefunded},
		{"chargeback", "epic", epic, "chargeback:epic.E1", "epic entitlement E1", []cmd{{"epic.st.E1.revoke", "epic.st.E1", "", storegate.KindRevoke}}, ""},
		{"return", "epic", epic, "return:epic.E1", "epic entitlement E1", []cmd{{"epic.st.E1.revoke", "epic.st.E1", "", storegate.KindRevoke}}, ""},
		{"chargeback_reversed", "epic", epic, "chargeback_reversed:epic.E1", "epic entitlement E1",
			[]cmd{{"epic.st.E1.revoke", "epic.st.E1", "", storegate.KindRevoke}, {"epic.st.E1.reinstate", "", "epic.st.E1", storegate.KindFulfill}}, ""},
		{"refund", "xbox", xbox, "refund:xbox.O.L", "xbox order O line item L", []cmd{{"xbox.st.O.L.revoke", "xbox.st.O.L", "", storegate.KindRevoke}}, ""},
		{"purchase", "playstation", mapping.StoreOrder{EntitlementID: "P"}, "purchase:playstation.P", "playstation entitlement P",
			[]cmd{{"playstation.st.P", "", "", storegate.KindFulfill}}, ""},
	} {
		p := storePlan(t, tc.typ, tc.platform, tc.order)
		var got []cmd
		for _, c := range p.Commands {
			got = append(got, cmd{c.ID, c.Reverses, c.Order, c.Kind})
			if c.Kind == storegate.KindFulfill && (len(c.Lines) != 1 || c.Lines[0].Grants[0].Amount != 20) {
				t.Errorf("%s %s: grant lines %+v, want 20 GEMS", tc.platform, tc.typ, c.Lines)
			}
		}
		if p.Key != tc.key || p.OrderRef != tc.ref || !reflect.DeepEqual(got, tc.cmds) {
			t.Errorf("%s %s: key %q ref %q cmds %+v; want %q %q %+v", tc.platform, tc.typ, p.Key, p.OrderRef, got, tc.key, tc.ref, tc.cmds)
		}
		if tc.note != "" && (len(p.Notes) != 1 || p.Notes[0].Status != tc.note || !strings.HasPrefix(p.Notes[0].Order, tc.platform+".st.")) {
			t.Errorf("%s %s: notes %+v, want one %s", tc.platform, tc.typ, p.Notes, tc.note)
		}
	}
	if mapping.ClawsBack(storegate.PlatformSteam) || mapping.ClawsBack(storegate.PlatformTwitch) || !mapping.ClawsBack(storegate.PlatformXbox) {
		t.Fatal("claw-back platforms are Epic, PlayStation and Xbox only")
	}
}

func TestCatalog_ProductsAndPrices(t *testing.T) {
	for _, tc := range []struct {
		sku  mapping.SKU
		want string
	}{
		{mapping.SKU{SKU: "a", Type: storegate.ItemDurable, Products: map[string]string{"gog": "1"}}, "not a store platform"},
		{mapping.SKU{SKU: "a", Type: storegate.ItemDurable, Products: map[string]string{"steam": ""}}, "empty product id"},
		{mapping.SKU{SKU: "a", Type: storegate.ItemDurable, Prices: map[string]int64{"usd": 1}}, "neither an ISO 4217 code nor a currency the catalog grants"},
		{mapping.SKU{SKU: "a", Type: storegate.ItemDurable, Prices: map[string]int64{"USD": 0}}, "must be positive"},
	} {
		if _, err := mapping.NewCatalog([]mapping.SKU{tc.sku}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.sku, err, tc.want)
		}
	}
}

func TestCatalog_VirtualCurrencyPrices(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []mapping.SKU
		want    string
	}{
		{"a currency a later sku grants", []mapping.SKU{
			{SKU: "sword", Type: storegate.ItemDurable, Prices: map[string]int64{"CRYSTALS": 500}},
			{SKU: "crystals_100", Type: storegate.ItemCurrency, Currency: "CRYSTALS", Amount: 100}}, ""},
		{"a currency nothing grants", []mapping.SKU{
			{SKU: "sword", Type: storegate.ItemDurable, Prices: map[string]int64{"STARS": 5}}}, "neither an ISO 4217 code nor a currency the catalog grants"},
		{"a virtual currency named like an ISO code", []mapping.SKU{
			{SKU: "gem_10", Type: storegate.ItemCurrency, Currency: "GEM", Amount: 10},
			{SKU: "sword", Type: storegate.ItemDurable, Prices: map[string]int64{"GEM": 5}}}, "named like an ISO 4217 code"},
	} {
		cat, err := mapping.NewCatalog(tc.entries)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		case tc.want == "" && (!cat.Virtual("CRYSTALS") || cat.Virtual("USD")):
			t.Errorf("%s: CRYSTALS virtual %v, USD virtual %v", tc.name, cat.Virtual("CRYSTALS"), cat.Virtual("USD"))
		}
	}
}

func TestPartnerPay_DebitsAnOrderInAVirtualCurrency(t *testing.T) {
	cat, err := mapping.NewCatalog([]mapping.SKU{
		{SKU: "crystals_100", Type: storegate.ItemCurrency, Currency: "CRYSTALS", Amount: 100},
		{SKU: "sword", Type: storegate.ItemDurable, Prices: map[string]int64{"CRYSTALS": 500, "USD": 499}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		currency string
		amount   int64
		want     *storegate.Debit
	}{
		{"CRYSTALS", 500, &storegate.Debit{Currency: "CRYSTALS", Amount: 500}},
		{"USD", 499, nil},
	} {
		o := storegate.PartnerOrder{ID: 7, PlayerID: "p1", Currency: tc.currency, Amount: tc.amount,
			Lines: []storegate.PricedLine{{SKU: "sword", Quantity: 1, UnitPrice: tc.amount, Amount: tc.amount}}}
		p, err := mapping.PartnerPay(mapping.PartnerSource{Name: "pa", Target: "ledger"}, o, "bank-1", cat, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Commands) != 1 || !reflect.DeepEqual(p.Commands[0].Debit, tc.want) {
			t.Errorf("%s: commands %+v, want one fulfillment debiting %+v", tc.currency, p.Commands, tc.want)
		}
	}
}

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
