package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"storegate"
	"storegate/store/engine"
)

// scriptedInline takes commands for the "ledger" target, refuses those in
// refuse, panics on those in panics, and counts every offer. Each delivery
// first writes an effect (an effects row named after the command).
type scriptedInline struct {
	refuse, panics map[string]bool
	mu             sync.Mutex
	offers         map[string]int
	calls          [][]string // the ids of each call, in order
}

func (f *scriptedInline) Takes(c storegate.Command) bool { return c.Target == "ledger" }

func (f *scriptedInline) Apply(ctx context.Context, tx *engine.Tx, cs []storegate.Command) storegate.Outcome {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	f.mu.Lock()
	f.calls = append(f.calls, ids)
	f.mu.Unlock()
	for _, c := range cs {
		if !f.deliver(ctx, tx, c) {
			return storegate.Outcome{Verdict: storegate.VerdictRetry}
		}
	}
	return storegate.Outcome{Verdict: storegate.VerdictDone}
}

func (f *scriptedInline) deliver(ctx context.Context, tx *engine.Tx, c storegate.Command) bool {
	f.mu.Lock()
	f.offers[c.ID]++
	f.mu.Unlock()
	if _, err := tx.Exec(ctx, `INSERT INTO effects (id) VALUES (?)`, "effect:"+c.ID); err != nil {
		return false
	}
	if f.panics[c.ID] {
		panic("target blew up")
	}
	return !f.refuse[c.ID]
}

// scriptedStore opens a SQLite file store that delivers to f on accept,
// and counts the batches of accepts it runs again one by one.
func scriptedStore(t *testing.T, f *scriptedInline) (*DB, *retryCounter) {
	t.Helper()
	retries := &retryCounter{}
	db, err := Open(context.Background(), engine.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db"), Observer: retries,
		Migrations: []engine.Migrations{{Owner: "test", Files: fstest.MapFS{
			"sqlite/9001_effects.sql": {Data: []byte("CREATE TABLE effects (id TEXT PRIMARY KEY)")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.ApplyOnAccept("ledger", f)
	return db, retries
}

// retryCounter is an Observer counting BulkRetried.
type retryCounter struct {
	n atomic.Int64
}

func (r *retryCounter) BulkRetried()                                     { r.n.Add(1) }
func (*retryCounter) Committed(int, time.Duration)                       {}
func (*retryCounter) WriterCheckpoint(time.Duration)                     {}
func (*retryCounter) Reconnected()                                       {}
func (*retryCounter) LogSynced(time.Duration)                            {}
func (*retryCounter) Delivered(string, storegate.Verdict, time.Duration) {}

// acceptInOneBatch holds the committer, queues one Accept per command in
// order, and lets them all commit together.
func acceptInOneBatch(t *testing.T, db *DB, cmds []storegate.Command) {
	t.Helper()
	var evs []storegate.Event
	for _, c := range cmds {
		evs = append(evs, storegate.Event{Source: "src", Type: "order_paid", Key: c.ID, PlayerID: c.PlayerID, Body: []byte(`{}`)})
	}
	queueAccepts(t, db, evs, cmds)()
}

// queueAccepts holds db's committer, queues the accept of each event with
// its command, in the order given, and returns a function that lets them
// commit as one batch and waits for their answers.
func queueAccepts(t *testing.T, db *DB, evs []storegate.Event, cmds []storegate.Command) func() {
	t.Helper()
	ctx := context.Background()
	entered, release := make(chan struct{}), make(chan struct{})
	go db.Write(ctx, func(context.Context, *engine.Tx) error { close(entered); <-release; return nil })
	<-entered
	var wg sync.WaitGroup
	for i, ev := range evs {
		wg.Go(func() {
			if _, _, err := db.Accept(ctx, ev, []storegate.Command{cmds[i]}, storegate.Answer{Status: 204}); err != nil {
				t.Errorf("accept %s: %v", ev.Key, err)
			}
		})
		for deadline := time.Now().Add(10 * time.Second); db.Queued() <= i; {
			if time.Now().After(deadline) {
				t.Fatalf("accept %s did not queue", ev.Key)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return func() { close(release); wg.Wait() }
}

func command(id string, kind storegate.Kind, target, player string) storegate.Command {
	c := storegate.Command{ID: id, Kind: kind, Source: "src", Target: target, PlayerID: player}
	if kind == storegate.KindRevoke {
		c.Reverses = "earlier"
	}
	return c
}

func wantStates(t *testing.T, db *DB, f *scriptedInline, want map[string]storegate.State, offers map[string]int) {
	t.Helper()
	ctx := context.Background()
	for id, state := range want {
		ci, err := db.Command(ctx, id)
		if err != nil {
			t.Fatalf("command %s: %v", id, err)
		}
		var effects int
		db.QueryRow(ctx, `SELECT COUNT(*) FROM effects WHERE id = ?`, "effect:"+id).Scan(&effects)
		if ci.State != state || effects != map[bool]int{true: 1}[state == storegate.StateDone] {
			t.Errorf("command %s is %s with %d effects, want %s", id, ci.State, effects, state)
		}
		if f.offers[id] != offers[id] {
			t.Errorf("command %s offered %d times, want %d", id, f.offers[id], offers[id])
		}
	}
}

// In one batch: grants are done; a remote target's command is queued
// without an offer and holds its player's later grant; a refused revoke is
// undone under its own savepoint and holds its player's later grant. None
// of it makes the batch start over (every done grant was offered once).
func TestInline_BatchQueuesWhatItCannotDo(t *testing.T) {
	f := &scriptedInline{refuse: map[string]bool{"v3": true}, offers: map[string]int{}}
	db, retries := scriptedStore(t, f)
	acceptInOneBatch(t, db, []storegate.Command{
		command("t0", storegate.KindFulfill, "ledger", "pa"),
		command("r1", storegate.KindFulfill, "ags", "pb"),
		command("t2", storegate.KindFulfill, "ledger", "pb"),
		command("v3", storegate.KindRevoke, "ledger", "pc"),
		command("t4", storegate.KindFulfill, "ledger", "pc"),
		command("t5", storegate.KindFulfill, "ledger", "pd"),
	})
	done, pending := storegate.StateDone, storegate.StatePending
	wantStates(t, db, f,
		map[string]storegate.State{"t0": done, "r1": pending, "t2": pending, "v3": pending, "t4": pending, "t5": done},
		map[string]int{"t0": 1, "v3": 1, "t5": 1})
	if n := retries.n.Load(); n != 0 {
		t.Errorf("the observer heard %d batches run again, want 0", n)
	}
}

// A target that panics inside the batch does not take the committer (and
// the process) down: the batch starts over one accept at a time, the
// panicking command is undone and queued, the others are done; the
// observer hears of the batch run again (storegate_store_accept_batch_retries_total).
func TestInline_PanicInABatchIsANotDone(t *testing.T) {
	f := &scriptedInline{panics: map[string]bool{"t1": true}, offers: map[string]int{}}
	db, retries := scriptedStore(t, f)
	acceptInOneBatch(t, db, []storegate.Command{
		command("t0", storegate.KindFulfill, "ledger", "pa"),
		command("t1", storegate.KindFulfill, "ledger", "pb"),
		command("t2", storegate.KindFulfill, "ledger", "pc"),
	})
	done := storegate.StateDone
	wantStates(t, db, f,
		map[string]storegate.State{"t0": done, "t1": storegate.StatePending, "t2": done},
		map[string]int{"t0": 2, "t1": 2, "t2": 1})
	if n := retries.n.Load(); n != 1 {
		t.Errorf("the observer heard %d batches run again, want 1", n)
	}
}

// manyStore is scriptedStore, with in's calls to read.
func manyStore(t *testing.T, in *scriptedInline) (*scriptedInline, *DB, *retryCounter) {
	t.Helper()
	db, retries := scriptedStore(t, in)
	return in, db, retries
}

// The Applier gets a batch's fulfillments together, in order, up to a
// command that runs alone under its savepoint (a revoke), which keeps its
// place between them.
func TestInline_BatchHandsGrantsOverTogether(t *testing.T) {
	f, db, retries := manyStore(t, &scriptedInline{offers: map[string]int{}})
	acceptInOneBatch(t, db, []storegate.Command{
		command("t0", storegate.KindFulfill, "ledger", "pa"),
		command("t1", storegate.KindFulfill, "ledger", "pb"),
		command("v2", storegate.KindRevoke, "ledger", "pc"),
		command("t3", storegate.KindFulfill, "ledger", "pd"),
		command("t4", storegate.KindFulfill, "ledger", "pe"),
	})
	done := storegate.StateDone
	wantStates(t, db, f,
		map[string]storegate.State{"t0": done, "t1": done, "v2": done, "t3": done, "t4": done},
		map[string]int{"t0": 1, "t1": 1, "v2": 1, "t3": 1, "t4": 1})
	if got, want := fmt.Sprint(f.calls), "[[t0 t1] [v2] [t3 t4]]"; got != want {
		t.Errorf("the Applier got %s, want %s", got, want)
	}
	var order []string
	rows, err := db.Query(context.Background(), `SELECT id FROM effects ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p string
		rows.Scan(&p)
		order = append(order, p)
	}
	rows.Close()
	if got, want := fmt.Sprint(order), "[effect:t0 effect:t1 effect:v2 effect:t3 effect:t4]"; got != want {
		t.Errorf("effects written in the order %s, want %s", got, want)
	}
	if n := retries.n.Load(); n != 0 {
		t.Errorf("the observer heard %d batches run again, want 0", n)
	}
}

// A batch of fulfillments the Applier does not finish is undone as a
// whole (it stops at the first not done), and the accepts run again one by
// one: the refused grant is queued, the others are done.
func TestInline_BatchNotDoneRunsEachAlone(t *testing.T) {
	f, db, retries := manyStore(t, &scriptedInline{refuse: map[string]bool{"t1": true}, offers: map[string]int{}})
	acceptInOneBatch(t, db, []storegate.Command{
		command("t0", storegate.KindFulfill, "ledger", "pa"),
		command("t1", storegate.KindFulfill, "ledger", "pb"),
		command("t2", storegate.KindFulfill, "ledger", "pc"),
	})
	done := storegate.StateDone
	wantStates(t, db, f,
		map[string]storegate.State{"t0": done, "t1": storegate.StatePending, "t2": done},
		map[string]int{"t0": 2, "t1": 2, "t2": 1})
	if n := retries.n.Load(); n != 1 {
		t.Errorf("the observer heard %d batches run again, want 1", n)
	}
}
