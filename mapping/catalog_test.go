package mapping_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"storegate"
	"storegate/mapping"
)

var demo = []mapping.SKU{
	{SKU: "crystals_100", Type: storegate.ItemCurrency, Currency: "CRYSTALS", Amount: 100, Products: map[string]string{"steam": "1001"}},
	{SKU: "sword", Type: storegate.ItemDurable, Item: "iron_sword"},
	{SKU: "potion", Type: storegate.ItemConsumable, UseCount: 3},
	{SKU: "pack", Type: storegate.ItemBundle, Contents: []mapping.Content{{SKU: "sword"}, {SKU: "crystals_100", Quantity: 2}, {SKU: "potion"}}},
}

func TestCatalog_Line(t *testing.T) {
	cat, err := mapping.NewCatalog(demo)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sku  string
		qty  int64
		want storegate.Line
	}{
		{"crystals_100", 3, storegate.Line{SKU: "crystals_100", Quantity: 3, Type: storegate.ItemCurrency,
			Grants: []storegate.Grant{{Currency: "CRYSTALS", Amount: 300}}}},
		{"sword", 1, storegate.Line{SKU: "sword", Quantity: 1, Type: storegate.ItemDurable,
			Grants: []storegate.Grant{{Item: "iron_sword", Type: storegate.ItemDurable, Quantity: 1}}}},
		{"potion", 2, storegate.Line{SKU: "potion", Quantity: 2, Type: storegate.ItemConsumable,
			Grants: []storegate.Grant{{Item: "potion", Type: storegate.ItemConsumable, Quantity: 6}}}},
		{"pack", 2, storegate.Line{SKU: "pack", Quantity: 2, Type: storegate.ItemBundle, Bundle: true, Grants: []storegate.Grant{
			{Item: "iron_sword", Type: storegate.ItemDurable, Quantity: 2},
			{Currency: "CRYSTALS", Amount: 400},
			{Item: "potion", Type: storegate.ItemConsumable, Quantity: 6}}}},
	} {
		got, err := cat.Line(tc.sku, tc.qty)
		if err != nil {
			t.Fatalf("%s×%d: %v", tc.sku, tc.qty, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s×%d = %+v, want %+v", tc.sku, tc.qty, got, tc.want)
		}
	}
	if _, err := cat.Line("moon_rock", 1); !errors.Is(err, mapping.ErrUnknownSKU) {
		t.Errorf("unknown sku: err = %v, want ErrUnknownSKU", err)
	}
	for _, qty := range []int64{0, -1, mapping.MaxQuantity + 1} {
		if _, err := cat.Line("sword", qty); err == nil {
			t.Errorf("quantity %d accepted", qty)
		}
	}
	if sku, ok := cat.ByProduct("steam", "1001"); !ok || sku.SKU != "crystals_100" {
		t.Errorf("ByProduct(steam, 1001) = %v, %v", sku.SKU, ok)
	}
}

func TestNewCatalog_RejectsBadEntries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []mapping.SKU
		want    string
	}{
		{"no sku", []mapping.SKU{{Type: storegate.ItemDurable}}, "catalog[0].sku: required"},
		{"twice", []mapping.SKU{{SKU: "a", Type: storegate.ItemDurable}, {SKU: "a", Type: storegate.ItemDurable}}, `"a" listed twice`},
		{"coin without currency", []mapping.SKU{{SKU: "c", Type: storegate.ItemCurrency, Amount: 1}}, "currency: required"},
		{"lookalike currency", []mapping.SKU{{SKU: "c", Type: storegate.ItemCurrency, Currency: "СRYSTALS", Amount: 1}}, "ASCII letters"},
		{"currency with a direction mark", []mapping.SKU{{SKU: "c", Type: storegate.ItemCurrency, Currency: "GEMS\u200f", Amount: 1}}, "ASCII letters"},
		{"coin without amount", []mapping.SKU{{SKU: "c", Type: storegate.ItemCurrency, Currency: "G"}}, "amount: must be positive"},
		{"item with currency", []mapping.SKU{{SKU: "s", Type: storegate.ItemDurable, Currency: "G", Amount: 1}}, "only type coin grants currency"},
		{"no type", []mapping.SKU{{SKU: "s"}}, "type: required"},
		{"unknown type", []mapping.SKU{{SKU: "s", Type: "gizmo"}}, `unknown type "gizmo"`},
		{"empty bundle", []mapping.SKU{{SKU: "b", Type: storegate.ItemBundle}}, "a bundle needs contents"},
		{"bundle of unknown", []mapping.SKU{{SKU: "b", Type: storegate.ItemBundle, Contents: []mapping.Content{{SKU: "x"}}}}, `unknown sku "x"`},
		{"nested bundle", []mapping.SKU{
			{SKU: "a", Type: storegate.ItemDurable},
			{SKU: "b1", Type: storegate.ItemBundle, Contents: []mapping.Content{{SKU: "a"}}},
			{SKU: "b2", Type: storegate.ItemBundle, Contents: []mapping.Content{{SKU: "b1"}}}}, "bundles do not nest"},
		{"revocation of another kind", []mapping.SKU{{SKU: "s", Type: storegate.ItemDurable, Revocation: "allow_negative"}},
			`revocation: "allow_negative" is not one of revoke, custom, none for type durable`},
		{"bundle revocation of one kind", []mapping.SKU{{SKU: "a", Type: storegate.ItemDurable},
			{SKU: "b", Type: storegate.ItemBundle, Revocation: "revoke", Contents: []mapping.Content{{SKU: "a"}}}},
			`revocation: "revoke" is not one of custom, none for type bundle`},
		{"product twice", []mapping.SKU{
			{SKU: "a", Type: storegate.ItemDurable, Products: map[string]string{"epic": "x"}},
			{SKU: "b", Type: storegate.ItemDurable, Products: map[string]string{"epic": "x"}}}, "already maps to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mapping.NewCatalog(tc.entries)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// A grant carries the revocation action of the SKU sold: its own, or for a
// bundle's contents the bundle's when it names one.
func TestCatalog_LineCarriesRevocationActions(t *testing.T) {
	cat, err := mapping.NewCatalog([]mapping.SKU{
		{SKU: "gold", Type: storegate.ItemCurrency, Currency: "GOLD", Amount: 10, Revocation: "fail_if_negative"},
		{SKU: "sword", Type: storegate.ItemDurable},
		{SKU: "kit", Type: storegate.ItemBundle, Contents: []mapping.Content{{SKU: "gold"}, {SKU: "sword"}}},
		{SKU: "gift", Type: storegate.ItemBundle, Revocation: "none", Contents: []mapping.Content{{SKU: "gold"}, {SKU: "sword"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sku  string
		want []string
	}{
		{"gold", []string{"fail_if_negative"}},
		{"sword", []string{""}},
		{"kit", []string{"fail_if_negative", ""}},
		{"gift", []string{"none", "none"}},
	} {
		line, err := cat.Line(tc.sku, 2)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, g := range line.Grants {
			got = append(got, g.Revocation)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: actions %q, want %q", tc.sku, got, tc.want)
		}
	}
}

func TestCatalog_Currencies(t *testing.T) {
	cat, err := mapping.NewCatalog(append(demo, mapping.SKU{SKU: "gold_5", Type: storegate.ItemCurrency, Currency: "GOLD", Amount: 5}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cat.Currencies(), []string{"CRYSTALS", "GOLD"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Currencies() = %v, want %v", got, want)
	}
	for cur, want := range map[string]bool{"CRYSTALS": true, "GOLD": true, "crystals": false, "СRYSTALS": false, "": false} {
		if got := cat.HasCurrency(cur); got != want {
			t.Errorf("HasCurrency(%q) = %v, want %v", cur, got, want)
		}
	}
}
