package dispatch_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"storegate"
	"storegate/dispatch"
	"storegate/ledger"
	"storegate/store"
	"storegate/store/engine"
)

// BenchmarkPipeline measures the durable path of a paid order without HTTP:
// concurrent Accepts (event + fulfill command, group-committed to a SQLite
// file) and the grants in the embedded ledger, until every order is granted.
// ns/op is per order, accept and grant together; one writer does both, so
// this is the gateway's ceiling on SQLite. "on-accept" grants in the
// accepting transaction (the gateway's wiring, store.DB.DeliverOnAccept);
// "outbox" leaves every grant to the dispatcher's claims.
//
//	go test ./dispatch -run '^$' -bench Pipeline -benchtime 20000x -count 3
func BenchmarkPipeline(b *testing.B) {
	for _, onAccept := range []bool{true, false} {
		name := map[bool]string{true: "on-accept", false: "outbox"}[onAccept]
		b.Run(name, func(b *testing.B) { benchmarkPipeline(b, onAccept) })
	}
}

func benchmarkPipeline(b *testing.B, onAccept bool) {
	ctx := context.Background()
	db, d := ledgerStore(b, engine.Config{}, onAccept)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { d.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	var n atomic.Int64
	b.SetParallelism(32) // 64 senders on 2 CPUs, like make bench's closed loop
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ev, cmd := benchOrder(n.Add(1))
			if _, _, err := db.Accept(ctx, ev, []storegate.Command{cmd}, storegate.Answer{Status: 204}); err != nil {
				b.Error(err)
				return
			}
			d.Notify()
		}
	})
	accepted := b.Elapsed()
	for {
		depth, err := db.Depth(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if depth[storegate.StatePending] == 0 {
			var done int
			if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM outbox WHERE state = 'done'`).Scan(&done); err != nil || done != b.N {
				b.Fatalf("%d commands done (%v), want %d", done, err, b.N)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(accepted.Nanoseconds())/float64(b.N), "accept-ns/op")
}

// ledgerStore opens a SQLite file store (cfg without its DSN) with the
// embedded ledger behind a dispatcher, which grants on accept if onAccept.
// The store closes when b ends.
func ledgerStore(b *testing.B, cfg engine.Config, onAccept bool) (*store.DB, *dispatch.Dispatcher) {
	cfg.DSN = "sqlite:" + filepath.Join(b.TempDir(), "s.db")
	cfg.Migrations = []engine.Migrations{ledger.Migrations()}
	db, err := store.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	l, err := ledger.New(db, ledger.Config{})
	if err != nil {
		b.Fatal(err)
	}
	d, err := dispatch.New(db, map[string]dispatch.Lane{"ledger": {Target: l, Applier: l}}, dispatch.Config{Poll: 5 * time.Millisecond}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if onAccept {
		db.ApplyOnAccept("ledger", l)
	}
	return db, d
}

// benchOrder is paid order i of make bench's shape: one of 1,000 players,
// 100 crystals granted by the ledger.
func benchOrder(i int64) (storegate.Event, storegate.Command) {
	player := fmt.Sprint("p", i%1000)
	body := fmt.Appendf(nil, `{"notification_type":"order_paid","order":{"id":%d},"user":{"external_id":%q},"items":[{"sku":"crystals_100","quantity":1}]}`, i, player)
	ev := storegate.Event{Source: "bench", Type: "order_paid", Key: fmt.Sprint("order_paid:", i), PlayerID: player, OrderRef: fmt.Sprint(i), Body: body}
	cmd := storegate.Command{ID: fmt.Sprint("xsolla.bench.", i), Kind: storegate.KindFulfill, Source: "bench", Target: "ledger", PlayerID: player,
		Platform: storegate.PlatformXsolla, OrderRef: fmt.Sprint(i),
		Lines: []storegate.Line{{SKU: "crystals_100", Quantity: 1, Grants: []storegate.Grant{{Currency: "CRYSTALS", Amount: 100}}}}}
	return ev, cmd
}

// commits counts the committer's commits and the writes they carried.
type commits struct {
	mu            sync.Mutex
	count, writes int
}

func (c *commits) Committed(writes int, _ time.Duration) {
	c.mu.Lock()
	c.count++
	c.writes += writes
	c.mu.Unlock()
}

func (c *commits) WriterCheckpoint(time.Duration)                     {}
func (c *commits) Reconnected()                                       {}
func (c *commits) LogSynced(time.Duration)                            {}
func (c *commits) BulkRetried()                                       {}
func (c *commits) Delivered(string, storegate.Verdict, time.Duration) {}

// BenchmarkCommitSize measures the single writer with a fixed number of
// senders, each waiting for its answer: how its time per order, and the
// pages it writes to the log per order, fall as more orders share a commit.
// "granted" is the gateway's path (BenchmarkPipeline/on-accept: event,
// command and grant in one transaction); "queued" accepts the event and
// queues its command for the dispatcher (a remote target's path); "event"
// stores the event alone, the floor of any design that keeps the accept
// durable. Checkpoints are off for the run, so the log's length is what the
// orders wrote.
//
//	go test ./dispatch -run '^$' -bench CommitSize -benchtime 8000x
func BenchmarkCommitSize(b *testing.B) {
	for _, what := range []string{"granted", "queued", "event"} {
		for _, senders := range []int{2, 4, 8, 16, 32, 64} {
			b.Run(fmt.Sprint(what, "/senders=", senders), func(b *testing.B) { commitSize(b, what, senders, 1000) })
		}
	}
	// The gateway's path on a database of the size a make bench run
	// leaves (about 150,000 orders of 1,000 players): the pages each
	// order dirties in its player's part of an index are no longer shared.
	for _, senders := range []int{8, 16, 32} {
		b.Run(fmt.Sprint("granted-150k/senders=", senders), func(b *testing.B) { commitSize(b, "granted", senders, 150_000) })
	}
}

func commitSize(b *testing.B, what string, senders int, prior int64) {
	ctx := context.Background()
	c := &commits{}
	db, _ := ledgerStore(b, engine.Config{CheckpointEvery: time.Hour, Observer: c}, what == "granted")
	var n atomic.Int64
	send := func(limit int64) {
		for i := n.Add(1); i <= limit; i = n.Add(1) {
			ev, cmd := benchOrder(i)
			cmds := []storegate.Command{cmd}
			if what == "event" {
				cmds = nil
			}
			if _, _, err := db.Accept(ctx, ev, cmds, storegate.Answer{Status: 204}); err != nil {
				b.Error(err)
				return
			}
		}
	}
	// Every player exists, as in a warm gateway.
	var fill sync.WaitGroup
	for range 64 {
		fill.Go(func() { send(prior) })
	}
	fill.Wait()
	n.Store(prior)
	// A checkpoint now copies the whole log; the next commit starts it
	// over, so its length at the end is what the run wrote.
	if err := db.QueryRow(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(new(int), new(int), new(int)); err != nil {
		b.Fatal(err)
	}
	c.mu.Lock()
	c.count, c.writes = 0, 0
	c.mu.Unlock()
	cpu0 := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() { send(prior + int64(b.N)) })
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/order")
	var frames int
	if err := db.QueryRow(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(new(int), &frames, new(int)); err != nil {
		b.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b.ReportMetric(float64(c.writes)/float64(c.count), "writes/commit")
	b.ReportMetric(float64(frames)/float64(b.N), "log-pages/order")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// remote stands for an AGS or studio target: it has no in-transaction path.
type remote struct{}

func (remote) Deliver(context.Context, storegate.Command) storegate.Outcome {
	return storegate.Outcome{Verdict: storegate.VerdictDone}
}

// BenchmarkAcceptRemoteTarget measures accepts whose command goes to a
// remote target, with and without grants on accept wired: what delivering
// on accept costs a command it cannot take (each player has its command
// pending, as during an outage). The dispatcher does not run.
//
//	go test ./dispatch -run '^$' -bench AcceptRemoteTarget -benchtime 10000x -count 3
func BenchmarkAcceptRemoteTarget(b *testing.B) {
	for _, onAccept := range []bool{false, true} {
		b.Run(map[bool]string{true: "on-accept", false: "outbox"}[onAccept], func(b *testing.B) {
			ctx := context.Background()
			db, err := store.Open(ctx, engine.Config{DSN: "sqlite:" + filepath.Join(b.TempDir(), "s.db"), Migrations: []engine.Migrations{ledger.Migrations()}})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if onAccept {
				l, err := ledger.New(db, ledger.Config{})
				if err != nil {
					b.Fatal(err)
				}
				db.ApplyOnAccept("ledger", l)
			}
			var n atomic.Int64
			b.SetParallelism(64)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					player := fmt.Sprint("p", i%1000)
					ev := storegate.Event{Source: "s", Type: "order_paid", Key: fmt.Sprint("k", i), PlayerID: player, Body: []byte(`{}`)}
					c := storegate.Command{ID: fmt.Sprint("t", i), Kind: storegate.KindFulfill, Target: "ags", PlayerID: player,
						Lines: []storegate.Line{{SKU: "x", Quantity: 1, Grants: []storegate.Grant{{Currency: "C", Amount: 1}}}}}
					if _, _, err := db.Accept(ctx, ev, []storegate.Command{c}, storegate.Answer{Status: 204}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
