package console_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"storegate/ledger"
)

// The player page of a player with 10,000 ledger entries (and a few
// orders): it reads one page of the ledger, newest first, whatever the
// history's length. Run: go test ./api/console -run '^$' -bench PlayerPage
func BenchmarkPlayerPage(b *testing.B) {
	g := consoleGateway(b)
	paidAndRefunded(b, g)
	ctx := context.Background()
	// Concurrent adjustments share group commits, which makes the setup
	// quick; the ledger applies each once.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 10000; i += 16 {
				if _, err := g.Ledger.Adjust(ctx, ledger.Adjustment{PlayerID: "player-1", Currency: "CRYSTALS", Amount: 1,
					Reason: "bench", Actor: "bench", Key: fmt.Sprint("bench-", i)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	if last, _, err := g.Ledger.History(ctx, "player-1", ledger.HistoryQuery{Page: ledger.Page{Limit: 1, Offset: 10000}}); err != nil || len(last) != 1 {
		b.Fatalf("player-1 has not 10,000 entries and more: %v", err)
	}
	c := newClient(b, g)
	c.signIn("bench")
	b.ResetTimer()
	for b.Loop() {
		if p := c.get("/console/players/player-1"); p.StatusCode != http.StatusOK {
			b.Fatalf("player page: %d", p.StatusCode)
		}
	}
}
