package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"storegate"
	"storegate/internal/fakeclock"
	"storegate/ledger"
	"storegate/store"
	"storegate/store/engine"
)

var start = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func openLedger(t *testing.T, cfg ledger.Config) (*ledger.Ledger, *store.DB) {
	t.Helper()
	db, err := store.Open(context.Background(), engine.Config{
		DSN: "sqlite:" + t.TempDir() + "/s.db", Now: fakeclock.New(start).Now,
		Migrations: []engine.Migrations{ledger.Migrations()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := ledger.New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, db
}

func coins(currency string, amount int64) storegate.Line {
	return storegate.Line{SKU: currency + "_pack", Quantity: 1, Type: storegate.ItemCurrency,
		Grants: []storegate.Grant{{Currency: currency, Amount: amount}}}
}

func item(name string, typ storegate.ItemType, qty int64) storegate.Line {
	return storegate.Line{SKU: name + "_sku", Quantity: 1, Type: typ,
		Grants: []storegate.Grant{{Item: name, Type: typ, Quantity: qty}}}
}

func fulfill(id, player string, platform storegate.Platform, lines ...storegate.Line) storegate.Command {
	return storegate.Command{ID: id, Kind: storegate.KindFulfill, Source: "xsolla", Target: "ledger",
		PlayerID: player, Platform: platform, Lines: lines}
}

func revoke(id, player string, platform storegate.Platform, reverses string, lines ...storegate.Line) storegate.Command {
	return storegate.Command{ID: id, Kind: storegate.KindRevoke, Source: "xsolla", Target: "ledger",
		PlayerID: player, Platform: platform, Reverses: reverses, Lines: lines, Reason: "refund"}
}

// balances flattens a player's wallets to "CURRENCY/Platform" -> balance, plus
// "CURRENCY" -> total.
func balances(t *testing.T, l *ledger.Ledger, player string) map[string]int64 {
	t.Helper()
	ws, err := l.Wallets(context.Background(), player)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, w := range ws {
		out[w.Currency] = w.Balance
		for _, p := range w.Platforms {
			out[w.Currency+"/"+string(p.Platform)] = p.Balance
		}
	}
	return out
}

// entitlements lists a player's entitlements as "item:status".
func entitlements(t *testing.T, l *ledger.Ledger, player string, all bool) map[string]string {
	t.Helper()
	es, err := l.Entitlements(context.Background(), player, all)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range es {
		out[e.Item] = e.Status
	}
	return out
}

func equalMaps[V comparable](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestFulfill_CreditsAndEntitles(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{})
	bundle := storegate.Line{SKU: "starter_bundle", Quantity: 1, Bundle: true, Type: storegate.ItemBundle,
		Grants: []storegate.Grant{{Currency: "GOLD", Amount: 5}, {Item: "potion", Type: storegate.ItemConsumable, Quantity: 3}}}
	res, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla,
		coins("CRYSTALS", 100), item("sword", storegate.ItemDurable, 1), bundle))
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed {
		t.Error("first fulfillment reported as replayed")
	}
	if got, want := res.TransactionID, "t1"; got != want {
		t.Errorf("transaction id = %q, want %q", got, want)
	}
	if got, want := len(res.Credits), 2; got != want {
		t.Fatalf("credits = %+v, want %d", res.Credits, want)
	}
	if got, want := res.Credits[0], (ledger.CreditResult{Currency: "CRYSTALS", Platform: storegate.PlatformXsolla, Amount: 100, BalanceAfter: 100}); got != want {
		t.Errorf("credit = %+v, want %+v", got, want)
	}
	if got, want := len(res.Entitlements), 2; got != want {
		t.Errorf("entitlements = %v, want %d", res.Entitlements, want)
	}
	if got, want := balances(t, l, "p1"), map[string]int64{
		"CRYSTALS": 100, "CRYSTALS/Xsolla": 100, "GOLD": 5, "GOLD/Xsolla": 5,
	}; !equalMaps(got, want) {
		t.Errorf("wallets = %v, want %v", got, want)
	}
	es, err := l.Entitlements(ctx, "p1", false)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ledger.Entitlement{}
	for _, e := range es {
		got[e.Item] = e
	}
	if e := got["sword"]; e.Type != storegate.ItemDurable || e.UseCount != 1 || e.SKU != "sword_sku" ||
		e.Status != "active" || e.TransactionID != "t1" || e.Platform != storegate.PlatformXsolla || !e.GrantedAt.Equal(start) {
		t.Errorf("sword = %+v, want an active durable from t1 on Xsolla granted at %v", e, start)
	}
	if e := got["potion"]; e.Type != storegate.ItemConsumable || e.UseCount != 3 || e.SKU != "starter_bundle" {
		t.Errorf("potion = %+v, want a consumable with 3 uses from the bundle", e)
	}
	if len(got) != 2 {
		t.Errorf("entitlements = %v, want sword and potion", es)
	}
}

func TestFulfill_NoPlatformCreditsOther(t *testing.T) {
	l, _ := openLedger(t, ledger.Config{})
	if _, err := l.Fulfill(context.Background(), fulfill("t1", "p1", "", coins("GOLD", 7))); err != nil {
		t.Fatal(err)
	}
	if got, want := balances(t, l, "p1"), map[string]int64{"GOLD": 7, "GOLD/Other": 7}; !equalMaps(got, want) {
		t.Errorf("wallets = %v, want %v", got, want)
	}
}

func TestFulfill_SameIDTwiceChangesNothing(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{})
	first, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla, coins("CRYSTALS", 100), item("sword", storegate.ItemDurable, 1)))
	if err != nil {
		t.Fatal(err)
	}
	// The repeat even carries different lines: the first result stands.
	again, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla, coins("CRYSTALS", 5000), item("shield", storegate.ItemDurable, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed {
		t.Error("repeat not reported as replayed")
	}
	if got, want := len(again.Credits), 1; got != want {
		t.Fatalf("replayed credits = %+v, want %d", again.Credits, want)
	}
	if got, want := again.Credits[0], first.Credits[0]; got != want {
		t.Errorf("replayed credit = %+v, want the first %+v", got, want)
	}
	if got, want := fmt.Sprint(again.Entitlements), fmt.Sprint(first.Entitlements); got != want {
		t.Errorf("replayed entitlements = %s, want the first %s", got, want)
	}
	if got, want := balances(t, l, "p1"), map[string]int64{"CRYSTALS": 100, "CRYSTALS/Xsolla": 100}; !equalMaps(got, want) {
		t.Errorf("wallets = %v, want %v", got, want)
	}
	if got, want := entitlements(t, l, "p1", true), map[string]string{"sword": "active"}; !equalMaps(got, want) {
		t.Errorf("entitlements = %v, want %v", got, want)
	}
}

// A rejected command leaves nothing behind: once corrected, the same
// transaction id applies for real instead of replaying a half-done result.
func TestFulfill_InvalidGrantLeavesNothing(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{})
	bad := fulfill("t1", "p1", storegate.PlatformXsolla, coins("CRYSTALS", 100), storegate.Line{SKU: "empty", Grants: []storegate.Grant{{Amount: 1}}})
	_, err := l.Fulfill(ctx, bad)
	if got, want := storegate.ErrorCode(err), storegate.CodeInvalidParameter; got != want {
		t.Fatalf("error code = %s (err %v), want %s", got, err, want)
	}
	if got := balances(t, l, "p1"); len(got) != 0 {
		t.Errorf("wallets after a rejected fulfillment = %v, want none", got)
	}
	if ok, err := l.UserExists(ctx, "p1"); err != nil || ok {
		t.Errorf("UserExists after a rejected fulfillment = %v (err %v), want false", ok, err)
	}
	res, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla, coins("CRYSTALS", 100)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed {
		t.Error("corrected fulfillment replayed the rejected one")
	}
	if got, want := balances(t, l, "p1")["CRYSTALS"], int64(100); got != want {
		t.Errorf("balance = %d, want %d", got, want)
	}
}

func TestRevoke_ReversesTakesBackEverything(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{})
	if _, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla,
		coins("CRYSTALS", 100), item("sword", storegate.ItemDurable, 1), item("potion", storegate.ItemConsumable, 5))); err != nil {
		t.Fatal(err)
	}
	// Currency bought elsewhere is not touched by the revoke.
	if _, err := l.Fulfill(ctx, fulfill("t2", "p1", storegate.PlatformSteam, coins("CRYSTALS", 40))); err != nil {
		t.Fatal(err)
	}
	// The player spends 70 of the Xsolla crystals before the refund arrives.
	if _, err := l.Revoke(ctx, revoke("spend-1", "p1", storegate.PlatformXsolla, "", coins("CRYSTALS", 70))); err != nil {
		t.Fatal(err)
	}
	res, err := l.Revoke(ctx, revoke("t1.revoke", "p1", storegate.PlatformSteam /* ignored: the grant's platform is debited */, "t1"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed {
		t.Error("first revoke reported as replayed")
	}
	if got, want := len(res.Credits), 1; got != want {
		t.Fatalf("revoke credits = %+v, want %d", res.Credits, want)
	}
	if got, want := res.Credits[0], (ledger.CreditResult{Currency: "CRYSTALS", Platform: storegate.PlatformXsolla, Amount: -100, BalanceAfter: -70}); got != want {
		t.Errorf("revoke credit = %+v, want %+v", got, want)
	}
	if got, want := balances(t, l, "p1"), map[string]int64{
		"CRYSTALS": -30, "CRYSTALS/Xsolla": -70, "CRYSTALS/Steam": 40,
	}; !equalMaps(got, want) {
		t.Errorf("wallets = %v, want %v", got, want)
	}
	if got, want := entitlements(t, l, "p1", true), map[string]string{"sword": "revoked", "potion": "revoked"}; !equalMaps(got, want) {
		t.Errorf("entitlements = %v, want %v", got, want)
	}
}

func TestRevoke_BeforeFulfillmentIsNotGranted(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{})
	rv := revoke("t1.revoke", "p1", storegate.PlatformXsolla, "t1")
	if _, err := l.Revoke(ctx, rv); !errors.Is(err, ledger.ErrNotGranted) {
		t.Fatalf("revoke before the fulfillment: err = %v, want ErrNotGranted", err)
	}
	out := l.Deliver(ctx, rv)
	if got, want := out.Verdict, storegate.VerdictRetry; got != want {
		t.Errorf("Deliver verdict = %q, want %q", got, want)
	}
	if got, want := out.Code, "NOT_GRANTED_YET"; got != want {
		t.Errorf("Deliver code = %q, want %q", got, want)
	}
	// The early attempts recorded nothing: once the fulfillment lands, the
	// revoke really takes effect.
	if _, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla, coins("CRYSTALS", 100))); err != nil {
		t.Fatal(err)
	}
	res, err := l.Revoke(ctx, rv)
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed {
		t.Error("revoke after the fulfillment replayed an earlier failed attempt")
	}
	if got, want := balances(t, l, "p1")["CRYSTALS"], int64(0); got != want {
		t.Errorf("balance = %d, want %d", got, want)
	}
}

func TestRevoke_TwiceTakesBackOnce(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{})
	if _, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla, coins("CRYSTALS", 100), item("sword", storegate.ItemDurable, 1))); err != nil {
		t.Fatal(err)
	}
	first, err := l.Revoke(ctx, revoke("t1.revoke", "p1", storegate.PlatformXsolla, "t1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.Revoke(ctx, revoke("t1.revoke", "p1", storegate.PlatformXsolla, "t1"))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed {
		t.Error("second revoke not reported as replayed")
	}
	if got, want := fmt.Sprint(again.Credits, again.Entitlements), fmt.Sprint(first.Credits, first.Entitlements); got != want {
		t.Errorf("replayed revoke = %s, want the first %s", got, want)
	}
	if got, want := balances(t, l, "p1")["CRYSTALS"], int64(0); got != want {
		t.Errorf("balance = %d, want %d", got, want)
	}
}

func TestRevoke_LinesTakeBackOnlyThose(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{})
	if _, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla,
		coins("CRYSTALS", 100), item("sword", storegate.ItemDurable, 1), item("shield", storegate.ItemDurable, 1))); err != nil {
		t.Fatal(err)
	}
	// The same item from another order must survive a partial refund of t1.
	if _, err := l.Fulfill(ctx, fulfill("t2", "p2", storegate.PlatformXsolla, item("sword", storegate.ItemDurable, 1))); err != nil {
		t.Fatal(err)
	}
	res, err := l.Revoke(ctx, revoke("t1.partial", "p1", storegate.PlatformXsolla, "t1", coins("CRYSTALS", 30), item("sword", storegate.ItemDurable, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(res.Entitlements), 1; got != want {
		t.Errorf("revoked entitlements = %v, want %d", res.Entitlements, want)
	}
	if got, want := balances(t, l, "p1"), map[string]int64{"CRYSTALS": 70, "CRYSTALS/Xsolla": 70}; !equalMaps(got, want) {
		t.Errorf("wallets = %v, want %v", got, want)
	}
	if got, want := entitlements(t, l, "p1", true), map[string]string{"sword": "revoked", "shield": "active"}; !equalMaps(got, want) {
		t.Errorf("p1 entitlements = %v, want %v", got, want)
	}
	if got, want := entitlements(t, l, "p2", true), map[string]string{"sword": "active"}; !equalMaps(got, want) {
		t.Errorf("p2 entitlements = %v, want %v", got, want)
	}
}

func TestRevoke_RejectsNothingToRevoke(t *testing.T) {
	l, _ := openLedger(t, ledger.Config{})
	_, err := l.Revoke(context.Background(), revoke("r1", "p1", storegate.PlatformXsolla, ""))
	if got, want := storegate.ErrorCode(err), storegate.CodeInvalidParameter; got != want {
		t.Errorf("error code = %s (err %v), want %s", got, err, want)
	}
}

func TestDeliver_Verdicts(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{})
	tests := []struct {
		name     string
		cmd      storegate.Command
		want     storegate.Verdict
		wantCode string
	}{
		{"fulfill", fulfill("t1", "p1", storegate.PlatformXsolla, coins("GOLD", 1)), storegate.VerdictDone, ""},
		{"fulfill again", fulfill("t1", "p1", storegate.PlatformXsolla, coins("GOLD", 1)), storegate.VerdictDone, ""},
		{"revoke of a missing fulfillment", revoke("t9.revoke", "p1", storegate.PlatformXsolla, "t9"), storegate.VerdictRetry, "NOT_GRANTED_YET"},
		{"revoke", revoke("t1.revoke", "p1", storegate.PlatformXsolla, "t1"), storegate.VerdictDone, ""},
		{"no player", fulfill("t2", "", storegate.PlatformXsolla, coins("GOLD", 1)), storegate.VerdictDead, string(storegate.CodeInvalidParameter)},
		{"no transaction id", fulfill("", "p1", storegate.PlatformXsolla, coins("GOLD", 1)), storegate.VerdictDead, string(storegate.CodeInvalidParameter)},
		{"unknown kind", storegate.Command{ID: "t3", Kind: "gift", PlayerID: "p1"}, storegate.VerdictDead, "UNKNOWN_KIND"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := l.Deliver(ctx, tc.cmd)
			if got, want := out.Verdict, tc.want; got != want {
				t.Errorf("verdict = %q (%s), want %q", got, out.Message, want)
			}
			if got, want := out.Code, tc.wantCode; got != want {
				t.Errorf("code = %q, want %q", got, want)
			}
		})
	}
	if got, want := balances(t, l, "p1")["GOLD"], int64(0); got != want {
		t.Errorf("GOLD after fulfill, fulfill again and revoke = %d, want %d", got, want)
	}
}

func TestUserExists(t *testing.T) {
	ctx := context.Background()
	cfg := ledger.Config{Players: []string{"alice"}, PlayerPattern: "^player-[0-9]+$"}
	l, db := openLedger(t, cfg)
	if _, err := l.Fulfill(ctx, fulfill("t1", "bob", storegate.PlatformXsolla, coins("GOLD", 1))); err != nil {
		t.Fatal(err)
	}
	// A second ledger over the same store has an empty cache: granted
	// players must come from the store.
	fresh, err := ledger.New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		player string
		want   bool
	}{
		{"alice", true},           // listed
		{"player-42", true},       // matches the pattern
		{"player-x", false},       // does not match
		{"xplayer-42", false},     // anchored pattern
		{"bob", true},             // granted before
		{"mallory", false},        // unknown
		{"", false},               // empty
		{"Alice", false},          // ids are case-sensitive
		{"bob.revoke", false},     // not a prefix match
		{"player-42\nbob", false}, // $ does not match before a newline in Go
	}
	for _, tc := range tests {
		for name, led := range map[string]*ledger.Ledger{"same": l, "fresh": fresh} {
			t.Run(fmt.Sprintf("%s/%q", name, tc.player), func(t *testing.T) {
				got, err := led.UserExists(ctx, tc.player)
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Errorf("UserExists(%q) = %v, want %v", tc.player, got, tc.want)
				}
			})
		}
	}
}

func TestNew_RejectsBadPattern(t *testing.T) {
	db, err := store.Open(context.Background(), engine.Config{DSN: "sqlite:" + t.TempDir() + "/s.db", Migrations: []engine.Migrations{ledger.Migrations()}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := ledger.New(db, ledger.Config{PlayerPattern: "player-(["}); err == nil {
		t.Error("New accepted an invalid player pattern")
	}
}

func TestWallets_TotalsAcrossPlatforms(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{})
	for _, c := range []storegate.Command{
		fulfill("t1", "p1", storegate.PlatformXsolla, coins("CRYSTALS", 100)),
		fulfill("t2", "p1", storegate.PlatformSteam, coins("CRYSTALS", 50), coins("GOLD", 10)),
		fulfill("t3", "p1", storegate.PlatformXsolla, coins("CRYSTALS", 25)),
		fulfill("t4", "p2", storegate.PlatformSteam, coins("CRYSTALS", 1000)),
	} {
		if _, err := l.Fulfill(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	ws, err := l.Wallets(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	want := []ledger.Wallet{
		{Currency: "CRYSTALS", Balance: 175, Platforms: []ledger.PlatformBalance{{Platform: storegate.PlatformSteam, Balance: 50}, {Platform: storegate.PlatformXsolla, Balance: 125}}},
		{Currency: "GOLD", Balance: 10, Platforms: []ledger.PlatformBalance{{Platform: storegate.PlatformSteam, Balance: 10}}},
	}
	if got, want := fmt.Sprintf("%+v", stripTimes(ws)), fmt.Sprintf("%+v", want); got != want {
		t.Errorf("wallets =\n%s\nwant\n%s", got, want)
	}
	for _, w := range ws {
		if !w.UpdatedAt.Equal(start) {
			t.Errorf("%s updated at %v, want %v", w.Currency, w.UpdatedAt, start)
		}
	}
	none, err := l.Wallets(ctx, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if none == nil || len(none) != 0 {
		t.Errorf("wallets of an unknown player = %#v, want an empty list (JSON [])", none)
	}
}

func stripTimes(ws []ledger.Wallet) []ledger.Wallet {
	out := append([]ledger.Wallet(nil), ws...)
	for i := range out {
		out[i].UpdatedAt = time.Time{}
	}
	return out
}

func TestEntitlements_HidesRevokedUnlessAll(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{})
	if _, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla, item("sword", storegate.ItemDurable, 1))); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Fulfill(ctx, fulfill("t2", "p1", storegate.PlatformXsolla, item("shield", storegate.ItemDurable, 1))); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Revoke(ctx, revoke("t1.revoke", "p1", storegate.PlatformXsolla, "t1")); err != nil {
		t.Fatal(err)
	}
	if got, want := entitlements(t, l, "p1", false), map[string]string{"shield": "active"}; !equalMaps(got, want) {
		t.Errorf("Entitlements(all=false) = %v, want %v", got, want)
	}
	if got, want := entitlements(t, l, "p1", true), map[string]string{"sword": "revoked", "shield": "active"}; !equalMaps(got, want) {
		t.Errorf("Entitlements(all=true) = %v, want %v", got, want)
	}
	none, err := l.Entitlements(ctx, "nobody", true)
	if err != nil {
		t.Fatal(err)
	}
	if none == nil || len(none) != 0 {
		t.Errorf("entitlements of an unknown player = %#v, want an empty list", none)
	}
}

// 100 concurrent calls, fulfillments and revokes of distinct and duplicated
// ids, in any order: every id takes effect exactly once, so the balance is the
// sum of the unique fulfillments minus the unique revokes.
func TestConcurrentFulfillAndRevoke(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{})
	const (
		grants  = 30 // t0..t29, amount i+1, each sent twice
		revokes = 20 // t0..t19 revoked, each revoke sent twice
	)
	type call struct {
		cmd storegate.Command
	}
	var calls []call
	for i := range grants {
		c := fulfill(fmt.Sprint("t", i), "p1", storegate.PlatformXsolla, coins("CRYSTALS", int64(i+1)), item(fmt.Sprint("badge", i), storegate.ItemDurable, 1))
		calls = append(calls, call{c}, call{c})
	}
	for i := range revokes {
		c := revoke(fmt.Sprint("t", i, ".revoke"), "p1", storegate.PlatformXsolla, fmt.Sprint("t", i))
		calls = append(calls, call{c}, call{c})
	}
	if got, want := len(calls), 100; got != want {
		t.Fatalf("%d calls, want %d", got, want)
	}

	var mu sync.Mutex
	applied := map[string]int{} // transaction id -> non-replayed results
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for _, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			for {
				var res ledger.Result
				var err error
				if c.cmd.Kind == storegate.KindFulfill {
					res, err = l.Fulfill(ctx, c.cmd)
				} else {
					res, err = l.Revoke(ctx, c.cmd)
				}
				if errors.Is(err, ledger.ErrNotGranted) && time.Now().Before(deadline) {
					// The revoke overtook its fulfillment, as the dispatcher
					// would see it: try again.
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					t.Errorf("%s %s: %v", c.cmd.Kind, c.cmd.ID, err)
					return
				}
				if !res.Replayed {
					mu.Lock()
					applied[c.cmd.ID]++
					mu.Unlock()
				}
				return
			}
		}()
	}
	close(gate)
	wg.Wait()

	if got, want := len(applied), grants+revokes; got != want {
		t.Errorf("%d transaction ids applied, want %d", got, want)
	}
	for id, n := range applied {
		if n != 1 {
			t.Errorf("transaction %s applied %d times, want once", id, n)
		}
	}
	want := int64(0)
	for i := range grants {
		want += int64(i + 1)
	}
	for i := range revokes {
		want -= int64(i + 1)
	}
	if got := balances(t, l, "p1")["CRYSTALS"]; got != want {
		t.Errorf("balance = %d, want %d", got, want)
	}
	active := entitlements(t, l, "p1", false)
	if got, want := len(active), grants-revokes; got != want {
		t.Errorf("%d active entitlements, want %d", got, want)
	}
	for i := range grants {
		_, ok := active[fmt.Sprint("badge", i)]
		if wantActive := i >= revokes; ok != wantActive {
			t.Errorf("badge%d active = %v, want %v", i, ok, wantActive)
		}
	}
	if got, want := len(entitlements(t, l, "p1", true)), grants; got != want {
		t.Errorf("%d entitlements in all, want %d", got, want)
	}
}

// A fulfillment is taken back at most once in total, whatever mix and order
// of partial and full revokes names it: a partial refund followed by a full
// one (or the other way round, as retries may reorder them) must not debit
// the partially refunded currency twice.
func TestRevoke_NeverTakesBackMoreThanGranted(t *testing.T) {
	partial := revoke("t1.partial", "p1", storegate.PlatformXsolla, "t1", coins("CRYSTALS", 30), item("sword", storegate.ItemDurable, 1))
	full := revoke("t1.revoke", "p1", storegate.PlatformXsolla, "t1")
	over := revoke("t1.partial2", "p1", storegate.PlatformXsolla, "t1", coins("CRYSTALS", 500))
	tests := []struct {
		name     string
		revokes  []storegate.Command
		wantLeft int64
	}{
		{"partial then full", []storegate.Command{partial, full}, 0},
		{"full then partial", []storegate.Command{full, partial}, 0},
		{"partial larger than the grant", []storegate.Command{over}, 0},
		{"partial alone", []storegate.Command{partial}, 70},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			l, _ := openLedger(t, ledger.Config{})
			if _, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla, coins("CRYSTALS", 100), item("sword", storegate.ItemDurable, 1))); err != nil {
				t.Fatal(err)
			}
			// Currency from another order must not absorb the claw-back.
			if _, err := l.Fulfill(ctx, fulfill("t2", "p1", storegate.PlatformXsolla, coins("CRYSTALS", 1000))); err != nil {
				t.Fatal(err)
			}
			for _, rv := range tc.revokes {
				if _, err := l.Revoke(ctx, rv); err != nil {
					t.Fatalf("revoke %s: %v", rv.ID, err)
				}
			}
			if got, want := balances(t, l, "p1")["CRYSTALS"], 1000+tc.wantLeft; got != want {
				t.Errorf("balance = %d, want %d", got, want)
			}
		})
	}
}

// A partial revoke takes back as many entitlements as its line's quantity,
// newest first, and a consumable line (whose quantity is a use count) takes
// back one entitlement.
func TestRevoke_LinesTakeBackOnlyTheQuantity(t *testing.T) {
	ctx := context.Background()
	l, _ := openLedger(t, ledger.Config{})
	for _, c := range []storegate.Command{
		fulfill("t1", "p1", storegate.PlatformXsolla, item("sword", storegate.ItemDurable, 1)),
		fulfill("t2", "p1", storegate.PlatformXsolla, item("sword", storegate.ItemDurable, 1)),
		fulfill("t3", "p1", storegate.PlatformXsolla, item("sword", storegate.ItemDurable, 1)),
		fulfill("t4", "p1", storegate.PlatformXsolla, item("potion", storegate.ItemConsumable, 5)),
		fulfill("t5", "p1", storegate.PlatformXsolla, item("potion", storegate.ItemConsumable, 5)),
	} {
		if _, err := l.Fulfill(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	res, err := l.Revoke(ctx, revoke("r1", "p1", storegate.PlatformXsolla, "",
		item("sword", storegate.ItemDurable, 2), item("potion", storegate.ItemConsumable, 5)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(res.Entitlements), "[t3/0/0 t2/0/0 t5/0/0]"; got != want {
		t.Errorf("revoked %s, want %s (newest first)", got, want)
	}
	es, err := l.Entitlements(ctx, "p1", false)
	if err != nil {
		t.Fatal(err)
	}
	active := map[string]int{}
	for _, e := range es {
		active[e.Item]++
	}
	if got, want := active, map[string]int{"sword": 1, "potion": 1}; !equalMaps(got, want) {
		t.Errorf("active entitlements = %v, want %v", got, want)
	}
}
