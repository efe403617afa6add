package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"storegate"
	"storegate/internal/pgtest"
	"storegate/store/engine"
)

// queueBatch queues one accept per key, in the order given, to commit as
// one batch when the returned function is called.
func queueBatch(t *testing.T, db *DB, keys []string) func() {
	t.Helper()
	var evs []storegate.Event
	var cmds []storegate.Command
	for _, k := range keys {
		c := storegate.Command{ID: "cmd." + k, Kind: storegate.KindFulfill, Source: "src", Target: "ledger", PlayerID: "p-" + k}
		cmds = append(cmds, c)
		evs = append(evs, storegate.Event{Source: "src", Type: "order_paid", Key: k, PlayerID: c.PlayerID, Body: []byte(`{}`)})
	}
	return queueAccepts(t, db, evs, cmds)
}

// Replicas sent the same events at the same instant (a sender retrying
// through a load balancer, the bench's burst to every replica) take them in
// different orders. Each batch inserts its events in key order, so one
// replica's batch waits for the other's instead of deadlocking with it: no
// batch has to run again one accept at a time
// (storegate_store_accept_batch_retries_total).
func TestPostgres_SameEventsOnTwoReplicasNeverFailABatch(t *testing.T) {
	dsn := pgtest.DSN(t)
	var keys []string
	for i := range 200 {
		keys = append(keys, fmt.Sprintf("order-%03d", i))
	}
	reversed := slices.Clone(keys)
	slices.Reverse(reversed)
	for round := range 3 {
		var dbs []*DB
		var counters []*retryCounter
		for range 2 {
			rc := &retryCounter{}
			db, err := Open(context.Background(), engine.Config{DSN: dsn, Writers: 1, Observer: rc})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			dbs, counters = append(dbs, db), append(counters, rc)
		}
		prefix := func(ks []string) []string {
			out := make([]string, len(ks))
			for i, k := range ks {
				out[i] = fmt.Sprint(round, "-", k)
			}
			return out
		}
		a, b := queueBatch(t, dbs[0], prefix(keys)), queueBatch(t, dbs[1], prefix(reversed))
		var both sync.WaitGroup
		both.Go(a)
		both.Go(b)
		both.Wait()
		for i, rc := range counters {
			if n := rc.n.Load(); n != 0 {
				t.Errorf("round %d: replica %d ran %d batches again one by one", round, i, n)
			}
		}
		var stored int
		if err := dbs[0].QueryRow(context.Background(), `SELECT COUNT(*) FROM inbox WHERE key LIKE ?`, fmt.Sprint(round, "-%")).Scan(&stored); err != nil || stored != len(keys) {
			t.Fatalf("round %d: %d events stored (%v), want %d", round, stored, err, len(keys))
		}
	}
}
