package ledger_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"storegate"
	"storegate/ledger"
)

// pinCode asks l for a key for Xsolla source "xs".
func pinCode(l *ledger.Ledger, id, player, product, drm string) (string, error) {
	return l.PinCode(context.Background(), storegate.PinCodeRequest{RequestID: id, Source: "xs", PlayerID: player,
		Product: product, DRM: drm})
}

// Keys come from the sku_drm pool when it exists, else from the bare
// SKU's; a repeat gets the first key; a request naming no pool, or only
// pools never filled or run dry, is refused with a message that says what
// to import and holds no key.
func TestPinCode_PoolsAndRepeats(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			l, _, _ := newLedger(t, be, ledger.Config{})
			importKeys(t, l, "110101_steam", "STEAM-1", "STEAM-2")
			importKeys(t, l, "110101", "ANY-1", "ANY-2")
			importKeys(t, l, "220202_epic", "EPIC-1")
			secrets := []string{"STEAM-", "ANY-", "EPIC-"}
			tests := []struct {
				name, id, product, drm string
				pool                   string // the pool the key comes from
				code                   storegate.Code
				says                   []string // in the error
			}{
				{"the sku_drm pool, DRM in any case", "r1", "110101", "Steam", "110101_steam", "", nil},
				{"a repeat: the same key", "r1", "110101", "Steam", "110101_steam", "", nil},
				{"no pool for the DRM: the bare SKU's", "r2", "110101", "epic", "110101", "", nil},
				{"no DRM: the bare SKU's", "r3", "110101", "", "110101", "", nil},
				{"another request: another key", "r4", "110101", "steam", "110101_steam", "", nil},
				{"the pool ran dry", "r5", "110101", "steam", "", storegate.CodeOutOfStock,
					[]string{"pool of 110101_steam", "POST /admin/v1/keys/110101_steam"}},
				{"a DRM pool drained empties no other", "r6", "220202", "epic", "220202_epic", "", nil},
				{"no pool at all", "r7", "330303", "steam", "", storegate.CodeNotFound,
					[]string{"330303_steam or 330303", "330303_steam for this DRM alone, or 330303 for every DRM"}},
				{"no digital_content", "r8", "", "steam", "", storegate.CodeInvalidParameter, []string{"digital_content"}},
			}
			first := map[string]string{} // request id -> key
			owner := map[string]string{} // key -> request id
			for _, tt := range tests {
				key, err := pinCode(l, tt.id, "player-1", tt.product, tt.drm)
				if tt.code != "" {
					if storegate.ErrorCode(err) != tt.code || key != "" {
						t.Fatalf("%s: %q %v, want %s", tt.name, key, err, tt.code)
					}
					for _, s := range tt.says {
						if !strings.Contains(err.Error(), s) {
							t.Errorf("%s: %q does not say %q", tt.name, err, s)
						}
					}
					for _, s := range secrets {
						if strings.Contains(err.Error(), s) {
							t.Errorf("%s: %q holds a key", tt.name, err)
						}
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				if prior, repeat := first[tt.id]; repeat && key != prior {
					t.Errorf("%s: %s, first %s", tt.name, key, prior)
				}
				if o, taken := owner[key]; taken && o != tt.id {
					t.Errorf("%s: key %s went to %s and %s", tt.name, key, o, tt.id)
				}
				if !inPool(t, l, tt.pool, key) {
					t.Errorf("%s: key %s is not of pool %s", tt.name, key, tt.pool)
				}
				first[tt.id], owner[key] = key, tt.id
			}
			for sku, want := range map[string]ledger.KeyPool{"110101_steam": {Assigned: 2}, "110101": {Assigned: 2}, "220202_epic": {Assigned: 1}} {
				want.SKU = sku
				if got := pool(t, l, sku); got != want {
					t.Errorf("pool %+v, want %+v", got, want)
				}
			}
		})
	}
}

// inPool reports whether key was handed out of sku's pool.
func inPool(t *testing.T, l *ledger.Ledger, sku, key string) bool {
	t.Helper()
	keys, err := l.PlayerKeys(context.Background(), "player-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Key == key {
			return k.SKU == sku
		}
	}
	return false
}

// A key handed out for get_pincode is among the player's entitlements and
// keys like a key granted with an order, under the request id.
func TestPinCode_AnEntitlementOfThePlayer(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			l, _, _ := newLedger(t, be, ledger.Config{})
			importKeys(t, l, gameSKU, "KEY-1")
			const id = "xsolla.xs.get_pincode:txn.42"
			key, err := pinCode(l, id, "player-1", "110101", "steam")
			if err != nil || key != "KEY-1" {
				t.Fatalf("%q %v", key, err)
			}
			ents, err := l.Entitlements(ctx, "player-1", false)
			if err != nil || len(ents) != 1 {
				t.Fatalf("entitlements %+v %v", ents, err)
			}
			e := ents[0]
			if e.Key != key || e.Type != storegate.ItemGameKey || e.Item != gameSKU || e.TransactionID != id || e.Platform != storegate.PlatformXsolla {
				t.Errorf("entitlement %+v", e)
			}
			keys, err := l.PlayerKeys(ctx, "player-1")
			if err != nil || len(keys) != 1 || keys[0].TransactionID != id || keys[0].EntitlementID != e.ID {
				t.Errorf("player's keys %+v %v", keys, err)
			}
			if ok, _ := l.UserExists(ctx, "player-1"); !ok {
				t.Error("the player is not known after a key")
			}
		})
	}
}

// Two ledgers on one PostgreSQL database answer many get_pincode requests
// at once, each asked of both, then each asked again as Xsolla retries a
// refusal: every request keeps the key it first got, no key goes to two
// requests, and the pool is given out whole. (A take that a repeat of the
// same request undoes can hold a key for a moment, so the burst may refuse
// a request OUT_OF_STOCK while keys are left; the retry takes them.)
func TestPinCode_TwoReplicasNeverShareAKey(t *testing.T) {
	const keys, requests = 40, 60
	replicas := twoReplicas(t, keys)
	ask := func(i, r int) (string, error) {
		return pinCode(replicas[r], fmt.Sprint("req-", i), fmt.Sprint("p", i), "110101", "steam")
	}
	var wg sync.WaitGroup
	gate := make(chan struct{})
	got := make([][2]string, requests)
	errs := make([][2]error, requests)
	for i := range requests {
		for r := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				got[i][r], errs[i][r] = ask(i, r)
			}()
		}
	}
	close(gate)
	wg.Wait()
	owner := map[string]int{}
	for i := range requests {
		for r := range 2 {
			if err := errs[i][r]; err != nil && storegate.ErrorCode(err) != storegate.CodeOutOfStock {
				t.Errorf("request %d on replica %d: %v", i, r, err)
			}
		}
		if got[i][0] != "" && got[i][1] != "" && got[i][0] != got[i][1] {
			t.Errorf("request %d: keys %s and %s", i, got[i][0], got[i][1])
		}
		again, err := ask(i, i%2)
		if err != nil && storegate.ErrorCode(err) != storegate.CodeOutOfStock {
			t.Errorf("request %d asked again: %v", i, err)
		}
		first := got[i][0]
		if first == "" {
			first = got[i][1]
		}
		if first != "" && again != first {
			t.Errorf("request %d: %s asked again, first %s", i, again, first)
		}
		if again == "" {
			continue
		}
		if o, dup := owner[again]; dup {
			t.Errorf("key %s went to requests %d and %d", again, o, i)
		}
		owner[again] = i
	}
	if len(owner) != keys {
		t.Errorf("%d requests got a key from a pool of %d", len(owner), keys)
	}
	if p := pool(t, replicas[1], gameSKU); p != (ledger.KeyPool{SKU: gameSKU, Assigned: keys}) {
		t.Errorf("pool: %+v", p)
	}
}
