package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"storegate"
	"storegate/internal/fakeclock"
	"storegate/internal/pgtest"
	"storegate/ledger"
	"storegate/store"
	"storegate/store/engine"
)

const gameSKU = "110101_steam"

// keyLine is qty units of a game_key SKU.
func keyLine(sku string, qty int64) storegate.Line {
	return storegate.Line{SKU: sku, Quantity: qty, Type: storegate.ItemGameKey,
		Grants: []storegate.Grant{{Item: sku, Type: storegate.ItemGameKey, Quantity: qty}}}
}

func importKeys(t *testing.T, l *ledger.Ledger, sku string, codes ...string) ledger.KeyImport {
	t.Helper()
	out, err := l.ImportKeys(context.Background(), sku, codes)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pool(t *testing.T, l *ledger.Ledger, sku string) ledger.KeyPool {
	t.Helper()
	p, err := l.KeyPool(context.Background(), sku)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImportKeys_CountsAddedAndDuplicates(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			l, _, _ := newLedger(t, be, ledger.Config{})
			tests := []struct {
				name  string
				sku   string
				codes []string
				want  ledger.KeyImport
			}{
				{"new keys", gameSKU, []string{"AAAA-0001", "AAAA-0002"}, ledger.KeyImport{SKU: gameSKU, Added: 2, Available: 2}},
				{"again, one new", gameSKU, []string{"AAAA-0002", "AAAA-0003"}, ledger.KeyImport{SKU: gameSKU, Added: 1, Duplicate: 1, Available: 3}},
				{"twice in one import", gameSKU, []string{"AAAA-0004", "AAAA-0004"}, ledger.KeyImport{SKU: gameSKU, Added: 1, Duplicate: 1, Available: 4}},
				{"a key of another pool", "220202_epic", []string{"AAAA-0001", "BBBB-0001"}, ledger.KeyImport{SKU: "220202_epic", Added: 1, Duplicate: 1, Available: 1}},
			}
			for _, tt := range tests {
				if got := importKeys(t, l, tt.sku, tt.codes...); got != tt.want {
					t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
				}
			}
			for _, bad := range [][]string{{""}, {"has space"}, {"ok", "tab\there"}, {string(make([]byte, ledger.MaxKeyLength+1))}} {
				_, err := l.ImportKeys(context.Background(), gameSKU, bad)
				if storegate.ErrorCode(err) != storegate.CodeInvalidParameter {
					t.Errorf("import %q: got %v, want INVALID_PARAMETER", bad, err)
				}
			}
			if got := pool(t, l, gameSKU); got != (ledger.KeyPool{SKU: gameSKU, Available: 4}) {
				t.Errorf("pool after refused imports: %+v", got)
			}
		})
	}
}

// Three keys, three orders: each takes a different key, a fourth finds the
// pool empty (a dead letter for the dispatcher), a refund revokes its key,
// and a revoked key is never handed out again.
func TestGrants_TakeEachKeyOnce(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			l, _, _ := newLedger(t, be, ledger.Config{})
			importKeys(t, l, gameSKU, "KEY-AAAA", "KEY-BBBB", "KEY-CCCC")
			given := map[string]string{}
			for i := range 3 {
				player := fmt.Sprint("p", i)
				c := fulfill(fmt.Sprint("o", i), player, storegate.PlatformXsolla, keyLine(gameSKU, 1))
				if _, err := l.Fulfill(ctx, c); err != nil {
					t.Fatal(err)
				}
				// A repeat of the grant takes nothing more.
				if r, err := l.Fulfill(ctx, c); err != nil || !r.Replayed {
					t.Fatalf("repeat: %+v %v", r, err)
				}
				ents, err := l.Entitlements(ctx, player, false)
				if err != nil || len(ents) != 1 || ents[0].Key == "" || ents[0].Type != storegate.ItemGameKey {
					t.Fatalf("%s's entitlements: %+v %v", player, ents, err)
				}
				if other, dup := given[ents[0].Key]; dup {
					t.Fatalf("key given to %s and %s", other, player)
				}
				given[ents[0].Key] = player
			}
			if got := pool(t, l, gameSKU); got != (ledger.KeyPool{SKU: gameSKU, Assigned: 3}) {
				t.Errorf("pool: %+v", got)
			}
			fourth := fulfill("o3", "p3", storegate.PlatformXsolla, keyLine(gameSKU, 1))
			if _, err := l.Fulfill(ctx, fourth); storegate.ErrorCode(err) != storegate.CodeOutOfStock {
				t.Fatalf("fourth order: %v, want OUT_OF_STOCK", err)
			}
			out := l.Deliver(ctx, fourth)
			if out.Verdict != storegate.VerdictDead || out.Code != "OUT_OF_STOCK" {
				t.Errorf("fourth order delivered: %+v, want a dead letter OUT_OF_STOCK", out)
			}
			if ents, _ := l.Entitlements(ctx, "p3", true); len(ents) != 0 {
				t.Errorf("an order without its key granted %+v", ents)
			}

			if _, err := l.Revoke(ctx, revoke("o0.revoke", "p0", storegate.PlatformXsolla, "o0")); err != nil {
				t.Fatal(err)
			}
			if got := pool(t, l, gameSKU); got != (ledger.KeyPool{SKU: gameSKU, Assigned: 2, Revoked: 1}) {
				t.Errorf("pool after a refund: %+v", got)
			}
			keys, err := l.PlayerKeys(ctx, "p0")
			if err != nil || len(keys) != 1 || keys[0].Status != ledger.KeyRevoked {
				t.Fatalf("p0's keys after the refund: %+v %v", keys, err)
			}
			if _, err := l.Fulfill(ctx, fourth); storegate.ErrorCode(err) != storegate.CodeOutOfStock {
				t.Fatalf("after a refund: %v, want OUT_OF_STOCK (a revoked key is never reissued)", err)
			}
			importKeys(t, l, gameSKU, "KEY-DDDD")
			if _, err := l.Fulfill(ctx, fourth); err != nil {
				t.Fatal(err)
			}
			if ents, _ := l.Entitlements(ctx, "p3", false); len(ents) != 1 || ents[0].Key != "KEY-DDDD" {
				t.Errorf("after a refill: %+v", ents)
			}
		})
	}
}

func TestGrants_KeysPerUnitAndInBundles(t *testing.T) {
	bundle := storegate.Line{SKU: "deluxe", Quantity: 1, Bundle: true, Type: storegate.ItemBundle,
		Grants: []storegate.Grant{{Currency: "CRYSTALS", Amount: 100}, {Item: gameSKU, Type: storegate.ItemGameKey, Quantity: 1}}}
	tests := []struct {
		name  string
		lines []storegate.Line
		keys  int
	}{
		{"two units, two keys", []storegate.Line{keyLine(gameSKU, 2)}, 2},
		{"a bundle's key", []storegate.Line{bundle}, 1},
		{"two lines", []storegate.Line{keyLine(gameSKU, 1), bundle}, 2},
	}
	for _, be := range backends() {
		for _, tt := range tests {
			t.Run(be.name+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				l, _, _ := newLedger(t, be, ledger.Config{})
				importKeys(t, l, gameSKU, "K1", "K2", "K3")
				if _, err := l.Fulfill(ctx, fulfill("o1", "p1", storegate.PlatformOther, tt.lines...)); err != nil {
					t.Fatal(err)
				}
				keys, err := l.OrderKeys(ctx, "o1")
				if err != nil || len(keys) != tt.keys {
					t.Fatalf("order keys: %+v %v, want %d", keys, err, tt.keys)
				}
				if got := pool(t, l, gameSKU).Available; got != int64(3-tt.keys) {
					t.Errorf("available: %d", got)
				}
				if _, err := l.Revoke(ctx, revoke("o1.revoke", "p1", storegate.PlatformOther, "o1")); err != nil {
					t.Fatal(err)
				}
				if got := pool(t, l, gameSKU); got.Revoked != int64(tt.keys) || got.Assigned != 0 {
					t.Errorf("after the revoke: %+v", got)
				}
			})
		}
	}
}

// A pool short of keys fails the whole grant: nothing of the order is
// granted, no key is kept.
func TestGrants_ShortPoolGrantsNothing(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			l, _, _ := newLedger(t, be, ledger.Config{})
			importKeys(t, l, gameSKU, "K1")
			_, err := l.Fulfill(ctx, fulfill("o1", "p1", storegate.PlatformOther, coins("CRYSTALS", 5), keyLine(gameSKU, 2)))
			if storegate.ErrorCode(err) != storegate.CodeOutOfStock {
				t.Fatalf("got %v, want OUT_OF_STOCK", err)
			}
			if got := pool(t, l, gameSKU); got != (ledger.KeyPool{SKU: gameSKU, Available: 1}) {
				t.Errorf("pool: %+v", got)
			}
			if b := balances(t, l, "p1")["CRYSTALS"]; b != 0 {
				t.Errorf("balance %d: half an order was granted", b)
			}
		})
	}
}

// A hold (a partner's payment) takes the keys before the grant; the grant
// then hands out exactly those, and a hold short of keys holds none.
func TestHold_GrantUsesTheHeldKeys(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			l, db, _ := newLedger(t, be, ledger.Config{})
			importKeys(t, l, gameSKU, "K1", "K2", "K3")
			c := fulfill("partner.p.order.1", "p1", storegate.PlatformOther, keyLine(gameSKU, 2))
			if err := db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error { return l.Hold(ctx, tx, []storegate.Command{c}) }); err != nil {
				t.Fatal(err)
			}
			held, err := l.OrderKeys(ctx, c.ID)
			if err != nil || len(held) != 2 {
				t.Fatalf("held: %+v %v", held, err)
			}
			if _, err := l.Fulfill(ctx, c); err != nil {
				t.Fatal(err)
			}
			granted, _ := l.OrderKeys(ctx, c.ID)
			if fmt.Sprint(granted) != fmt.Sprint(held) {
				t.Errorf("granted %v, held %v", granted, held)
			}
			if got := pool(t, l, gameSKU); got != (ledger.KeyPool{SKU: gameSKU, Available: 1, Assigned: 2}) {
				t.Errorf("pool: %+v", got)
			}
			short := fulfill("partner.p.order.2", "p2", storegate.PlatformOther, keyLine(gameSKU, 2))
			err = db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error { return l.Hold(ctx, tx, []storegate.Command{short}) })
			if storegate.ErrorCode(err) != storegate.CodeOutOfStock {
				t.Fatalf("short hold: %v", err)
			}
			if got := pool(t, l, gameSKU).Available; got != 1 {
				t.Errorf("a refused hold kept keys: %d available", got)
			}
		})
	}
}

// Two stores (two replicas) on one PostgreSQL database grant from one pool
// at once: every key goes to one order, every order that got a key got one
// no other did, and the orders beyond the pool are refused OUT_OF_STOCK.
func TestGrants_TwoReplicasNeverShareAKey(t *testing.T) {
	const keys, orders = 60, 90
	ctx := context.Background()
	replicas := twoReplicas(t, keys)

	var wg sync.WaitGroup
	gate := make(chan struct{})
	errs := make([]error, orders)
	for i := range orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			_, errs[i] = replicas[i%2].Fulfill(ctx, fulfill(fmt.Sprint("o", i), fmt.Sprint("p", i), storegate.PlatformOther, keyLine(gameSKU, 1)))
		}()
	}
	close(gate)
	wg.Wait()
	granted := 0
	for i, err := range errs {
		switch storegate.ErrorCode(err) {
		case storegate.CodeOutOfStock:
		default:
			if err != nil {
				t.Errorf("order %d: %v", i, err)
				continue
			}
			granted++
		}
	}
	if granted != keys {
		t.Errorf("%d orders granted from a pool of %d", granted, keys)
	}
	owner := map[string]string{}
	for i := range orders {
		ks, err := replicas[0].OrderKeys(ctx, fmt.Sprint("o", i))
		if err != nil {
			t.Fatal(err)
		}
		if len(ks) > 1 || (len(ks) == 1) != (errs[i] == nil) {
			t.Errorf("order %d has keys %v (error %v)", i, ks, errs[i])
		}
		for _, k := range ks {
			if o, dup := owner[k.Key]; dup {
				t.Errorf("key %s went to %s and o%d", k.Key, o, i)
			}
			owner[k.Key] = fmt.Sprint("o", i)
		}
	}
	if got := pool(t, replicas[1], gameSKU); got != (ledger.KeyPool{SKU: gameSKU, Assigned: keys}) {
		t.Errorf("pool: %+v", got)
	}
}

// twoReplicas are two ledgers, each with a store of its own, on one
// PostgreSQL database whose pool of gameSKU holds keys keys.
func twoReplicas(t *testing.T, keys int) []*ledger.Ledger {
	t.Helper()
	dsn := pgtest.DSN(t)
	var replicas []*ledger.Ledger
	for range 2 {
		l, err := ledger.New(openStore(t, dsn, fakeclock.New(start)), ledger.Config{})
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, l)
	}
	var codes []string
	for i := range keys {
		codes = append(codes, fmt.Sprintf("KEY-%04d", i))
	}
	importKeys(t, replicas[0], gameSKU, codes...)
	return replicas
}

// Replica A takes a key and keeps its transaction open while replica B
// takes one from the same pool: B must pass over A's key rather than wait
// for it (and then find it taken), and the two keys differ.
func TestGrants_ReplicaSkipsAKeyBeingTaken(t *testing.T) {
	dsn := pgtest.DSN(t)
	// The deadline only ends a failing run: B blocked behind A's key would
	// otherwise wait for ever.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var dbs []*store.DB
	var replicas []*ledger.Ledger
	for range 2 {
		db := openStore(t, dsn, fakeclock.New(start))
		l, err := ledger.New(db, ledger.Config{})
		if err != nil {
			t.Fatal(err)
		}
		dbs, replicas = append(dbs, db), append(replicas, l)
	}
	importKeys(t, replicas[0], gameSKU, "K1", "K2")
	a := fulfill("oa", "pa", storegate.PlatformOther, keyLine(gameSKU, 1))
	b := fulfill("ob", "pb", storegate.PlatformOther, keyLine(gameSKU, 1))
	aTook, bTook := make(chan struct{}), make(chan struct{})
	errA := make(chan error, 1)
	go func() {
		errA <- dbs[0].Write(ctx, func(wctx context.Context, tx *engine.Tx) error {
			if err := replicas[0].Hold(wctx, tx, []storegate.Command{a}); err != nil {
				return err
			}
			close(aTook)
			select {
			case <-bTook:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("replica B never took a key while A held one: it waited for A's key")
			}
		})
	}()
	<-aTook
	errB := dbs[1].Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		err := replicas[1].Hold(ctx, tx, []storegate.Command{b})
		close(bTook)
		return err
	})
	if err := <-errA; err != nil {
		t.Fatal(err)
	}
	if errB != nil {
		t.Fatal(errB)
	}
	ka, _ := replicas[0].OrderKeys(ctx, "oa")
	kb, _ := replicas[1].OrderKeys(ctx, "ob")
	if len(ka) != 1 || len(kb) != 1 || ka[0].Key == kb[0].Key {
		t.Fatalf("A holds %v, B holds %v", ka, kb)
	}
}
