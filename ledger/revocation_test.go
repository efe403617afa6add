package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"storegate"
	"storegate/ledger"
	"storegate/store/engine"
)

func starterBundle() storegate.Line {
	return storegate.Line{SKU: "starter_bundle", Quantity: 1, Bundle: true, Type: storegate.ItemBundle,
		Grants: []storegate.Grant{{Item: "sword", Type: storegate.ItemDurable, Quantity: 1},
			{Item: "potion", Type: storegate.ItemConsumable, Quantity: 3}, {Currency: "GOLD", Amount: 50}}}
}

func consume(t *testing.T, l *ledger.Ledger, key, entitlement string, n int64) ledger.ConsumeResult {
	t.Helper()
	res, err := l.Consume(context.Background(), ledger.Consume{PlayerID: "p1", EntitlementID: entitlement, UseCount: n, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A bundle holding one used consumable: the rest is revoked, the potion
// fails with its reason, and the result says so the way AGS does.
func TestRevoke_BundleWithAUsedConsumableIsAPartialSuccess(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{})
	if _, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla, starterBundle())); err != nil {
		t.Fatal(err)
	}
	consume(t, l, "drink-1", "t1/0/1", 1)
	res, err := l.Revoke(ctx, revoke("t1.revoke", "p1", storegate.PlatformXsolla, "t1"))
	if err != nil {
		t.Fatal(err)
	}
	rev := res.Revocation
	if rev.Status != ledger.StatusFail || rev.State != ledger.StatePartiallyRevoked || rev.Source != "ORDER" {
		t.Fatalf("revocation %s/%s from %s, want FAIL/PARTIALLY_REVOKED from ORDER", rev.Status, rev.State, rev.Source)
	}
	bundle := rev.ItemRevocations[0]
	if bundle.ItemType != storegate.ItemBundle || bundle.Status != ledger.StatusFail || len(bundle.ItemRevocations) != 3 {
		t.Fatalf("bundle = %+v, want a failed bundle with 3 children", bundle)
	}
	var got []string
	for _, ch := range bundle.ItemRevocations {
		got = append(got, fmt.Sprintf("%s %s %s %s", ch.ItemID, ch.Strategy, ch.Status, ch.Reason))
	}
	want := []string{
		"sword revoke SUCCESS ",
		"potion revoke_unused FAIL potion has 2 of 3 uses left (1 consumed): fewer than the 3 to revoke",
		"GOLD allow_negative SUCCESS ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("children:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	raw, _ := json.Marshal(rev.StateInfo)
	if got, want := string(raw), `{"success_list":[{"item_id":"starter_bundle","sku":"starter_bundle","quantity":1,"items":[{"item_id":"sword","sku":"sword","quantity":1},{"item_id":"GOLD","sku":"GOLD","quantity":50}]}],`+
		`"failed_list":[{"item_id":"starter_bundle","sku":"starter_bundle","quantity":1,"error":"1 of the bundle's 3 contents could not be revoked","items":[{"item_id":"potion","sku":"potion","quantity":3,"error":"potion has 2 of 3 uses left (1 consumed): fewer than the 3 to revoke"}]}]}`; got != want {
		t.Errorf("state_info =\n%s\nwant\n%s", got, want)
	}
	if got, want := entitlements(t, l, "p1", true), map[string]string{"sword": "revoked", "potion": "active"}; !equalMaps(got, want) {
		t.Errorf("entitlements = %v, want %v", got, want)
	}
	if got := balances(t, l, "p1")["GOLD"]; got != 0 {
		t.Errorf("GOLD = %d, want 0", got)
	}
	// The outcome is final: delivering the revoke again replays it.
	if out := l.Deliver(ctx, revoke("t1.revoke", "p1", storegate.PlatformXsolla, "t1")); out.Verdict != storegate.VerdictDone {
		t.Errorf("redelivery = %+v, want done", out)
	}
}

func TestRevoke_ConsumablesAndBoxes(t *testing.T) {
	tests := []struct {
		name    string
		typ     storegate.ItemType
		uses    int64
		consume int64 // before the refund
		status  string
		reason  string
		left    string // entitlement status after
	}{
		{"unused consumable", storegate.ItemConsumable, 3, 0, ledger.StatusSuccess, "", "revoked"},
		{"partly used consumable", storegate.ItemConsumable, 3, 2, ledger.StatusFail, "potion has 1 of 3 uses left (2 consumed): fewer than the 3 to revoke", "active"},
		{"used up consumable", storegate.ItemConsumable, 3, 3, ledger.StatusFail, "every use of potion was consumed", "consumed"},
		{"unopened loot box", storegate.ItemLootBox, 1, 0, ledger.StatusSuccess, "", "revoked"},
		{"opened loot box", storegate.ItemLootBox, 1, 1, ledger.StatusFail, "the lootbox potion was opened: an opened box counts as consumed", "consumed"},
		{"opened option box", storegate.ItemOptionBox, 1, 1, ledger.StatusFail, "the optionbox potion was opened: an opened box counts as consumed", "consumed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			l, _ := openLedger(t, ledger.Config{})
			if _, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformSteam, item("potion", tc.typ, tc.uses))); err != nil {
				t.Fatal(err)
			}
			if tc.consume > 0 {
				consume(t, l, "use", "t1/0/0", tc.consume)
			}
			res, err := l.Revoke(ctx, revoke("t1.revoke", "p1", storegate.PlatformSteam, "t1"))
			if err != nil {
				t.Fatal(err)
			}
			ir := res.Revocation.ItemRevocations[0]
			if ir.Status != tc.status || ir.Reason != tc.reason || ir.Strategy != ledger.ConsumableRevokeUnused {
				t.Errorf("entry %s %q (%s), want %s %q", ir.Status, ir.Reason, ir.Strategy, tc.status, tc.reason)
			}
			if got := entitlements(t, l, "p1", true)["potion"]; got != tc.left {
				t.Errorf("entitlement is %s, want %s", got, tc.left)
			}
		})
	}
}

// As AGS does, only the entries whose strategy is custom go to the service:
// a bundle with a durable and a consumable sends the durable alone.
func TestRevoke_CustomDurableOnlySendsTheDurable(t *testing.T) {
	ctx := context.Background()
	svc := answering("SUCCESS", "", map[string]string{"ticket": "T-1"})
	l, _ := openLedger(t, ledger.Config{Revocation: ledger.Rules{Durable: ledger.StrategyCustom, Custom: svc, Namespace: "game-ns"}})
	if _, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla, starterBundle())); err != nil {
		t.Fatal(err)
	}
	res, err := l.Revoke(ctx, revoke("t1.revoke", "p1", storegate.PlatformXsolla, "t1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.calls) != 1 {
		t.Fatalf("service called %d times, want once (the durable)", len(svc.calls))
	}
	c := svc.calls[0]
	if c.EntryType != "ITEM" || c.Item == nil || c.Item.ItemID != "sword" || c.Item.ItemType != "INGAMEITEM" ||
		c.Item.EntitlementType != "DURABLE" || c.Item.UseCount != 1 || c.Namespace != "game-ns" || c.RequestID != "t1.revoke/0/0" {
		t.Errorf("request = %+v (item %+v)", c, c.Item)
	}
	sword := res.Revocation.ItemRevocations[0].ItemRevocations[0]
	if sword.Strategy != "custom" || sword.CustomRevocation["ticket"] != "T-1" || sword.Status != ledger.StatusSuccess {
		t.Errorf("sword = %+v, want custom SUCCESS with the service's custom_revocation", sword)
	}
	if res.Revocation.Status != ledger.StatusSuccess {
		t.Errorf("status = %s, want SUCCESS", res.Revocation.Status)
	}
}

// A consumable's entry states its quantity as AGS does, in items, and its
// uses in useCount: one 3-use potion is quantity 1, useCount 3, so a
// service computing quantity × useCount takes 3 uses, not 9.
func TestRevoke_CustomConsumableQuantityIsItsItems(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name         string
		line         storegate.Line
		wantQuantity int64
		wantUses     int64
	}{
		{"one 3-use potion", storegate.Line{SKU: "potion", Quantity: 1, Type: storegate.ItemConsumable,
			Grants: []storegate.Grant{{Item: "potion", Type: storegate.ItemConsumable, Quantity: 3}}}, 1, 3},
		{"two 3-use potions", storegate.Line{SKU: "potion", Quantity: 2, Type: storegate.ItemConsumable,
			Grants: []storegate.Grant{{Item: "potion", Type: storegate.ItemConsumable, Quantity: 6}}}, 2, 6},
		{"a bundle's potion", starterBundle(), 1, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := answering("SUCCESS", "", nil)
			l, _ := openLedger(t, ledger.Config{Revocation: ledger.Rules{Consumable: ledger.StrategyCustom, Custom: svc}})
			if _, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla, tc.line)); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Revoke(ctx, revoke("t1.revoke", "p1", storegate.PlatformXsolla, "t1")); err != nil {
				t.Fatal(err)
			}
			if len(svc.calls) != 1 {
				t.Fatalf("service called %d times, want once (the consumable)", len(svc.calls))
			}
			c := svc.calls[0]
			if c.Quantity != tc.wantQuantity || c.Item == nil || c.Item.UseCount != tc.wantUses || c.Item.EntitlementType != "CONSUMABLE" {
				t.Errorf("request quantity %d, item %+v; want quantity %d, useCount %d", c.Quantity, c.Item, tc.wantQuantity, tc.wantUses)
			}
		})
	}
}

func TestRevocations_QueryFilters(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{Revocation: ledger.Rules{Currency: ledger.CurrencyFailIfNegative}})
	cmds := []struct {
		grant  storegate.Command
		spend  int64
		source string
	}{
		{fulfill("x1", "p1", storegate.PlatformXsolla, coins("GOLD", 10)), 0, "ORDER"},
		{fulfill("e1", "p1", storegate.PlatformEpic, coins("GOLD", 10)), 0, "IAP"},
		{fulfill("s1", "p1", storegate.PlatformSteam, item("soundtrack", storegate.ItemMedia, 1)), 0, "DLC"},
		{fulfill("o1", "p1", storegate.PlatformOther, coins("GEMS", 10)), 5, "OTHER"},
	}
	for _, c := range cmds {
		if _, err := l.Fulfill(ctx, c.grant); err != nil {
			t.Fatal(err)
		}
		if c.spend > 0 {
			if _, err := l.Spend(ctx, ledger.Spend{PlayerID: "p1", Currency: "GEMS", Amount: c.spend, Key: "sp"}); err != nil {
				t.Fatal(err)
			}
		}
		res, err := l.Revoke(ctx, revoke(c.grant.ID+".revoke", "p1", c.grant.Platform, c.grant.ID))
		if err != nil {
			t.Fatal(err)
		}
		if res.Revocation.Source != c.source {
			t.Errorf("%s: source %s, want %s", c.grant.ID, res.Revocation.Source, c.source)
		}
	}
	ids := func(q ledger.RevocationQuery) string {
		revs, more, err := l.Revocations(ctx, "p1", q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range revs {
			out = append(out, r.TransactionID)
		}
		if more {
			out = append(out, "…")
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name string
		q    ledger.RevocationQuery
		want string
	}{
		{"all, newest first", ledger.RevocationQuery{}, "x1,s1,o1,e1"},
		{"source", ledger.RevocationQuery{Source: "IAP"}, "e1"},
		{"status FAIL (spent GEMS under fail_if_negative)", ledger.RevocationQuery{Status: "FAIL"}, "o1"},
		{"status SUCCESS", ledger.RevocationQuery{Status: "SUCCESS", Source: "DLC"}, "s1"},
		{"by the fulfillment", ledger.RevocationQuery{TransactionID: "e1"}, "e1"},
		{"by the revoke's own id", ledger.RevocationQuery{TransactionID: "e1.revoke"}, "e1"},
		{"time window excludes", ledger.RevocationQuery{Since: start.Add(time.Second)}, ""},
		{"time window includes", ledger.RevocationQuery{Since: start, Until: start.Add(time.Second)}, "x1,s1,o1,e1"},
		{"paging", ledger.RevocationQuery{Page: ledger.Page{Limit: 2}}, "x1,s1,…"},
		{"second page", ledger.RevocationQuery{Page: ledger.Page{Limit: 2, Offset: 2}}, "o1,e1"},
		{"unknown transaction", ledger.RevocationQuery{TransactionID: "zz"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(tc.q); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// A fulfillment applied before migration 0003 kept no command; its full
// revoke still takes back everything it granted.
func TestRevoke_FulfillmentWithoutAStoredCommand(t *testing.T) {
	ctx := context.Background()
	l, db := openLedger(t, ledger.Config{})
	if _, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla, coins("GOLD", 10), item("sword", storegate.ItemDurable, 1))); err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE ledger_transactions SET request = '' WHERE transaction_id = 't1'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	res, err := l.Revoke(ctx, revoke("t1.revoke", "p1", storegate.PlatformXsolla, "t1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := balances(t, l, "p1")["GOLD"]; got != 0 {
		t.Errorf("GOLD = %d, want 0", got)
	}
	if got := entitlements(t, l, "p1", true)["sword"]; got != "revoked" {
		t.Errorf("sword is %s, want revoked", got)
	}
	if len(res.Revocation.ItemRevocations) != 2 || res.Revocation.Status != ledger.StatusSuccess {
		t.Errorf("revocation = %+v", res.Revocation)
	}
}

// An entry's action: its order's source override, else the action its grant
// carries from the catalog, else the kind's rule. What cannot apply (an
// action of another kind, custom without a service) fails the entry and
// takes nothing, rather than guess or wait forever; none skips it. The
// record sums up the entitlement and credit revocations as AGS does.
func TestRevoke_ActionPrecedence(t *testing.T) {
	ctx := context.Background()
	gold := func(action string) storegate.Line {
		return storegate.Line{SKU: "gold", Quantity: 1, Type: storegate.ItemCurrency, Grants: []storegate.Grant{{Currency: "GOLD", Amount: 50, Revocation: action}}}
	}
	sword := func(action string) storegate.Line {
		return storegate.Line{SKU: "sword", Quantity: 1, Type: storegate.ItemDurable, Grants: []storegate.Grant{{Item: "sword", Type: storegate.ItemDurable, Quantity: 1, Revocation: action}}}
	}
	for _, tc := range []struct {
		name     string
		rules    ledger.Rules
		line     storegate.Line
		strategy string
		status   string
		skipped  bool
		reason   string
	}{
		{name: "kind's rule", line: gold(""), strategy: "allow_negative", status: "SUCCESS"},
		{name: "currency none", rules: ledger.Rules{Currency: "none"}, line: gold(""), strategy: "none", status: "SUCCESS", skipped: true,
			reason: "revocation of currency is turned off (none)"},
		{name: "item over kind", rules: ledger.Rules{Currency: "none"}, line: gold("allow_negative"), strategy: "allow_negative", status: "SUCCESS"},
		{name: "source over item", rules: ledger.Rules{Sources: map[string]ledger.SourceRules{"shop": {Currency: "none"}}}, line: gold("allow_negative"),
			strategy: "none", status: "SUCCESS", skipped: true, reason: "revocation of currency is turned off (none)"},
		{name: "source override of another kind", rules: ledger.Rules{Sources: map[string]ledger.SourceRules{"shop": {Durable: "none"}}}, line: gold(""),
			strategy: "allow_negative", status: "SUCCESS"},
		{name: "action of another kind", line: sword("allow_negative"), strategy: "allow_negative", status: "FAIL",
			reason: `revocation action "allow_negative" does not apply to durable`},
		{name: "custom without a service", line: sword("custom"), strategy: "custom", status: "FAIL",
			reason: "the custom strategy applies but no custom revocation service is configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := openLedger(t, ledger.Config{Revocation: tc.rules})
			c := fulfill("t1", "p1", storegate.PlatformEpic, tc.line)
			c.Source = "shop"
			if _, err := l.Fulfill(ctx, c); err != nil {
				t.Fatal(err)
			}
			r := revoke("t1.revoke", "p1", storegate.PlatformEpic, "t1")
			r.Source = "shop"
			res, err := l.Revoke(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			ir := res.Revocation.ItemRevocations[0]
			if ir.Strategy != tc.strategy || ir.Status != tc.status || ir.Skipped != tc.skipped || ir.Reason != tc.reason {
				t.Errorf("entry = %s %s skipped=%v %q, want %s %s skipped=%v %q", ir.Strategy, ir.Status, ir.Skipped, ir.Reason,
					tc.strategy, tc.status, tc.skipped, tc.reason)
			}
			taken := tc.status == "SUCCESS" && !tc.skipped
			rev := res.Revocation
			if rev.Namespace != "storegate" || len(rev.Items) != 1 || rev.Items[0].SKU != tc.line.SKU ||
				(len(rev.CreditRevocations)+len(rev.EntitlementRevocations) == 1) != taken {
				t.Errorf("record namespace %q, items %+v, credits %+v, entitlements %+v", rev.Namespace, rev.Items, rev.CreditRevocations, rev.EntitlementRevocations)
			}
			if taken && len(rev.CreditRevocations) == 1 && rev.CreditRevocations[0].Strategy != tc.strategy {
				t.Errorf("credit summary strategy = %q, want %q", rev.CreditRevocations[0].Strategy, tc.strategy)
			}
		})
	}
}

// Source overrides are checked when the ledger is made.
func TestNew_RefusesBadSourceOverrides(t *testing.T) {
	_, db := openLedger(t, ledger.Config{})
	_, err := ledger.New(db, ledger.Config{Revocation: ledger.Rules{Sources: map[string]ledger.SourceRules{
		"shop": {Currency: "forgive"}, "bank": {Consumable: "custom"}}}})
	for _, want := range []string{`sources.shop.revocation.currency: "forgive" is not allow_negative, fail_if_negative, custom, none`,
		"revocation.custom: a custom strategy needs a custom revocation service"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to mention %q", err, want)
		}
	}
}
