package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"storegate"
	"storegate/ledger"
)

// Many goroutines spend, grant and revoke on one wallet at once, each
// request sent twice: no update is lost (the balance is the sum of the
// effects, and every platform's history chains balance_after exactly), and
// every transaction id and idempotency key takes effect once.
func TestConcurrentSpendsGrantsRevokes_OneWallet(t *testing.T) {
	const (
		grants  = 40 // Epic packs g0..g39 of i+1 crystals
		revokes = 20 // g0..g19 charged back
		spends  = 40 // s0..s39 of i+1 crystals, across platforms
		seed    = 1_000_000
	)
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			l, db, _ := newLedger(t, be, ledger.Config{})
			if _, err := l.Fulfill(ctx, fulfill("seed", "p1", storegate.PlatformSteam, coins("CRYSTALS", seed))); err != nil {
				t.Fatal(err)
			}
			type call struct {
				id string
				do func() (replayed bool, err error)
			}
			var calls []call
			for i := range grants {
				c := fulfill(fmt.Sprint("g", i), "p1", storegate.PlatformEpic, coins("CRYSTALS", int64(i+1)))
				f := func() (bool, error) { r, err := l.Fulfill(ctx, c); return r.Replayed, err }
				calls = append(calls, call{c.ID, f}, call{c.ID, f})
			}
			for i := range revokes {
				c := revoke(fmt.Sprint("g", i, ".revoke"), "p1", storegate.PlatformEpic, fmt.Sprint("g", i))
				f := func() (bool, error) { r, err := l.Revoke(ctx, c); return r.Replayed, err }
				calls = append(calls, call{c.ID, f}, call{c.ID, f})
			}
			for i := range spends {
				s := spend(fmt.Sprint("s", i), int64(i+1))
				f := func() (bool, error) { r, err := l.Spend(ctx, s); return r.Replayed, err }
				calls = append(calls, call{"spend/" + s.Key, f}, call{"spend/" + s.Key, f})
			}
			var mu sync.Mutex
			applied := map[string]int{}
			deadline := time.Now().Add(30 * time.Second)
			gate := make(chan struct{})
			var wg sync.WaitGroup
			for _, c := range calls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					for {
						replayed, err := c.do()
						if errors.Is(err, ledger.ErrNotGranted) && time.Now().Before(deadline) {
							time.Sleep(time.Millisecond) // the revoke overtook its grant, as the dispatcher would retry
							continue
						}
						if err != nil {
							t.Errorf("%s: %v", c.id, err)
							return
						}
						if !replayed {
							mu.Lock()
							applied[c.id]++
							mu.Unlock()
						}
						return
					}
				}()
			}
			close(gate)
			wg.Wait()

			if got, want := len(applied), grants+revokes+spends; got != want {
				t.Errorf("%d ids applied, want %d", got, want)
			}
			for id, n := range applied {
				if n != 1 {
					t.Errorf("%s applied %d times, want once", id, n)
				}
			}
			var wantEpic, spent int64
			for i := revokes; i < grants; i++ {
				wantEpic += int64(i + 1)
			}
			for i := range spends {
				spent += int64(i + 1)
			}
			// Spends drain Steam first (the default order), so Epic only
			// moves with grants and revokes.
			want := map[string]int64{"CRYSTALS": seed + wantEpic - spent, "CRYSTALS/Epic": wantEpic, "CRYSTALS/Steam": seed - spent}
			if got := balances(t, l, "p1"); !equalMaps(got, want) {
				t.Errorf("wallets = %v, want %v", got, want)
			}
			// Every platform's history chains: each entry's balance_after is
			// the previous one plus its amount, ending at the balance.
			rows, err := db.Query(ctx, `SELECT platform, amount, balance_after FROM ledger_entries WHERE player_id = 'p1' ORDER BY id`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			last := map[string]int64{}
			n := 0
			for rows.Next() {
				var p string
				var amount, after int64
				if err := rows.Scan(&p, &amount, &after); err != nil {
					t.Fatal(err)
				}
				if last[p]+amount != after {
					t.Errorf("entry %d on %s: %d %+d recorded as %d: an update was lost or reordered", n, p, last[p], amount, after)
				}
				last[p] = after
				n++
			}
			if last["Epic"] != wantEpic || last["Steam"] != seed-spent {
				t.Errorf("history ends at %v, want Epic %d and Steam %d", last, wantEpic, seed-spent)
			}
			if want := 1 + grants + revokes + spends; n != want {
				t.Errorf("%d history entries, want %d", n, want)
			}
		})
	}
}
