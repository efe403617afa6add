package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"storegate"
	"storegate/store"
	"storegate/store/engine"
)

// BenchmarkAccept measures the durable write path alone: concurrent Accepts
// of distinct events, each with one command, group-committed to a SQLite
// file (WAL, synchronous=NORMAL, the log flushed by the engine).
func BenchmarkAccept(b *testing.B) {
	for _, par := range []int{8, 32, 128} {
		b.Run(fmt.Sprint("goroutines=", 2*par), func(b *testing.B) { benchAccept(b, par) })
	}
}

func benchAccept(b *testing.B, par int) {
	db, err := store.Open(context.Background(), engine.Config{DSN: "sqlite:" + filepath.Join(b.TempDir(), "s.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	body := []byte(`{"notification_type":"order_paid","order":{"id":123456},"user":{"external_id":"p42"},"items":[{"sku":"crystals_100","quantity":1}]}`)
	var n atomic.Int64
	b.SetParallelism(par)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			id := fmt.Sprint("xsolla.bench.order.", i)
			ev := storegate.Event{Source: "bench", Type: "order_paid", Key: fmt.Sprint("order_paid:", i), PlayerID: "p42", OrderRef: "order 1", Body: body}
			cmd := storegate.Command{ID: id, Kind: storegate.KindFulfill, Source: "bench", Target: "ledger", PlayerID: "p42", Platform: storegate.PlatformXsolla,
				Lines: []storegate.Line{{SKU: "crystals_100", Quantity: 1, Grants: []storegate.Grant{{Currency: "CRYSTALS", Amount: 100}}}}}
			if _, _, err := db.Accept(context.Background(), ev, []storegate.Command{cmd}, storegate.Answer{Status: 204}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
