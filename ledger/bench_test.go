package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"storegate"
	"storegate/ledger"
)

// BenchmarkLedger measures ledger operations per second through the real
// store (SQLite with synchronous=FULL; PostgreSQL too when
// STOREGATE_TEST_POSTGRES_DSN is set), with many concurrent callers so the
// group commit batches them, as the dispatcher and game servers do:
//
//	go test ./ledger -run '^$' -bench Ledger -benchtime 3s
func BenchmarkLedger(b *testing.B) {
	const players = 64
	for _, be := range backends() {
		for _, op := range []string{"grant", "spend", "revoke"} {
			b.Run(be.name+"/"+op, func(b *testing.B) {
				ctx := context.Background()
				l, _, _ := newLedger(b, be, ledger.Config{})
				player := func(i int64) string { return fmt.Sprint("p", i%players) }
				switch op {
				case "spend":
					for i := range int64(players) {
						if _, err := l.Fulfill(ctx, fulfill(fmt.Sprint("fund", i), player(i), storegate.PlatformSteam, coins("CRYSTALS", 1<<40))); err != nil {
							b.Fatal(err)
						}
					}
				case "revoke": // the grants to revoke, made concurrently
					var wg sync.WaitGroup
					for w := range int64(64) {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := w; i < int64(b.N); i += 64 {
								if _, err := l.Fulfill(ctx, fulfill(fmt.Sprint("g", i), player(i), storegate.PlatformEpic, coins("CRYSTALS", 10))); err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
					wg.Wait()
				}
				var n atomic.Int64
				b.SetParallelism(32) // callers per CPU: enough to fill the batches
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1) - 1
						var err error
						switch op {
						case "grant":
							_, err = l.Fulfill(ctx, fulfill(fmt.Sprint("g", i), player(i), storegate.PlatformEpic, coins("CRYSTALS", 10)))
						case "spend":
							_, err = l.Spend(ctx, ledger.Spend{PlayerID: player(i), Currency: "CRYSTALS", Amount: 1, Key: fmt.Sprint("s", i)})
						case "revoke":
							_, err = l.Revoke(ctx, revoke(fmt.Sprint("g", i, ".revoke"), player(i), storegate.PlatformEpic, fmt.Sprint("g", i)))
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}
