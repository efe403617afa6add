package store_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"storegate"
	"storegate/store"
	"storegate/store/engine"
	"storegate/store/storetest"
)

// fakeInline delivers every command its refuse set does not name. Each
// delivery first writes an effect (an effects row named after the
// command), so a test sees whether a refused delivery was undone, and
// registers an OnCommit hook, so it sees which deliveries committed.
// effects is the table fakeInline writes to, beside the store's own.
var effects = engine.Migrations{Owner: "test", Files: fstest.MapFS{
	"sqlite/9001_effects.sql":   {Data: []byte("CREATE TABLE effects (id TEXT PRIMARY KEY)")},
	"postgres/9001_effects.sql": {Data: []byte("CREATE TABLE effects (id TEXT PRIMARY KEY)")},
}}

type fakeInline struct {
	refuse map[string]bool

	mu        sync.Mutex
	offered   []string
	committed []string
}

func (f *fakeInline) Takes(storegate.Command) bool { return true }

func (f *fakeInline) Apply(ctx context.Context, tx *engine.Tx, cs []storegate.Command) storegate.Outcome {
	for _, c := range cs {
		if !f.deliver(ctx, tx, c) {
			return storegate.Outcome{Verdict: storegate.VerdictRetry}
		}
	}
	return storegate.Outcome{Verdict: storegate.VerdictDone}
}

func (f *fakeInline) deliver(ctx context.Context, tx *engine.Tx, c storegate.Command) bool {
	f.mu.Lock()
	f.offered = append(f.offered, c.ID)
	f.mu.Unlock()
	if _, err := tx.Exec(ctx, `INSERT INTO effects (id) VALUES (?)`, "effect:"+c.ID); err != nil {
		return false
	}
	if f.refuse[c.ID] {
		return false
	}
	tx.OnCommit(func() {
		f.mu.Lock()
		f.committed = append(f.committed, c.ID)
		f.mu.Unlock()
	})
	return true
}

func (f *fakeInline) offers(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, o := range f.offered {
		if o == id {
			n++
		}
	}
	return n
}

func inlineStore(t *testing.T, refuse ...string) (*store.DB, *fakeInline) {
	t.Helper()
	db := openSQLite(t, func() time.Time { return storetest.Start })
	f := &fakeInline{refuse: map[string]bool{}}
	for _, id := range refuse {
		f.refuse[id] = true
	}
	db.ApplyOnAccept("ledger", f)
	return db, f
}

func grant(id, player string) storegate.Command {
	return storegate.Command{ID: id, Kind: storegate.KindFulfill, Source: "src", Target: "ledger", PlayerID: player,
		Lines: []storegate.Line{{SKU: "crystals_100", Quantity: 1, Grants: []storegate.Grant{{Currency: "CRYSTALS", Amount: 100}}}}}
}

func acceptOne(t *testing.T, db *store.DB, key string, c storegate.Command) {
	t.Helper()
	ev := storegate.Event{Source: "src", Type: "order_paid", Key: key, PlayerID: c.PlayerID, Body: []byte(`{}`)}
	if _, _, err := db.Accept(context.Background(), ev, []storegate.Command{c}, storegate.Answer{Status: 204}); err != nil {
		t.Fatal(err)
	}
}

// wantCommand checks a command's state and whether its effect is stored.
func wantCommand(t *testing.T, db *store.DB, id string, state storegate.State, effect bool) {
	t.Helper()
	ci, err := db.Command(context.Background(), id)
	if err != nil {
		t.Fatalf("command %s: %v", id, err)
	}
	if ci.State != state {
		t.Errorf("command %s is %s, want %s", id, ci.State, state)
	}
	if state == storegate.StateDone && ci.Attempts != 1 {
		t.Errorf("command %s done after %d attempts, want 1", id, ci.Attempts)
	}
	var n int
	if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM effects WHERE id = ?`, "effect:"+id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if got := n == 1; got != effect || n > 1 {
		t.Errorf("command %s: %d effects stored, want effect %v", id, n, effect)
	}
}

func claimIDs(t *testing.T, db *store.DB) []string {
	t.Helper()
	claimed, err := db.Claim(context.Background(), "w", "ledger", 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range claimed {
		ids = append(ids, c.Command.ID)
	}
	return ids
}

func TestInline_DoneWhenAccepted(t *testing.T) {
	db, f := inlineStore(t)
	acceptOne(t, db, "o1", grant("t1", "p1"))
	wantCommand(t, db, "t1", storegate.StateDone, true)
	if ids := claimIDs(t, db); len(ids) != 0 {
		t.Fatalf("the dispatcher could claim %v, a command already done", ids)
	}
	if !slices.Equal(f.committed, []string{"t1"}) {
		t.Fatalf("committed deliveries = %v, want [t1]", f.committed)
	}
}

func TestInline_NotDoneIsUndoneAndQueued(t *testing.T) {
	db, f := inlineStore(t, "t1")
	acceptOne(t, db, "o1", grant("t1", "p1"))
	wantCommand(t, db, "t1", storegate.StatePending, false)
	if ids := claimIDs(t, db); !slices.Equal(ids, []string{"t1"}) {
		t.Fatalf("claimed %v, want the queued [t1]", ids)
	}
	if len(f.committed) != 0 {
		t.Fatalf("a refused delivery's hook ran: %v", f.committed)
	}
}

// A player's later command must not overtake one still pending (a revoke
// applied before its grant would revoke nothing).
func TestInline_PendingCommandHoldsThePlayersLaterOnes(t *testing.T) {
	ctx := context.Background()
	db, f := inlineStore(t, "t1")
	acceptOne(t, db, "o1", grant("t1", "p1"))
	acceptOne(t, db, "o2", grant("t2", "p1"))
	acceptOne(t, db, "o3", grant("t3", "p2")) // another player is not held
	if n := f.offers("t2"); n != 0 {
		t.Fatalf("t2 was offered %d times while t1 of the same player was pending", n)
	}
	wantCommand(t, db, "t2", storegate.StatePending, false)
	wantCommand(t, db, "t3", storegate.StateDone, true)

	// Once the dispatcher has delivered p1's queue, p1's next command is
	// delivered inline again.
	for _, id := range claimIDs(t, db) {
		if err := db.Complete(ctx, store.Completion{ID: id, Owner: "w", State: storegate.StateDone, Attempt: 1,
			Outcome: storegate.Outcome{Verdict: storegate.VerdictDone}}); err != nil {
			t.Fatal(err)
		}
	}
	acceptOne(t, db, "o4", grant("t4", "p1"))
	wantCommand(t, db, "t4", storegate.StateDone, true)
}

// A command id already queued is the same command (the same order revoked
// by two events): it is not delivered a second time.
func TestInline_QueuedCommandIsNotDeliveredAgain(t *testing.T) {
	db, f := inlineStore(t)
	acceptOne(t, db, "o1", grant("t1", "p1"))
	acceptOne(t, db, "o1-again-as-payment", grant("t1", "p1"))
	if n := f.offers("t1"); n != 1 {
		t.Fatalf("t1 offered %d times, want 1", n)
	}
	wantCommand(t, db, "t1", storegate.StateDone, true)
}

// Concurrent accepts share a commit; one refused delivery among them must
// leave the others done, itself queued, and no effect or hook twice.
func TestInline_BatchIsolatesARefusal(t *testing.T) {
	const n = 48
	db, f := inlineStore(t, "t7")
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { acceptOne(t, db, fmt.Sprint("o", i), grant(fmt.Sprint("t", i), fmt.Sprint("p", i))) })
	}
	wg.Wait()
	for i := range n {
		id := fmt.Sprint("t", i)
		if id == "t7" {
			wantCommand(t, db, id, storegate.StatePending, false)
			continue
		}
		wantCommand(t, db, id, storegate.StateDone, true)
	}
	committed := slices.Clone(f.committed)
	slices.Sort(committed)
	if distinct := len(slices.Compact(slices.Clone(committed))); len(committed) != n-1 || distinct != n-1 {
		t.Fatalf("%d delivery hooks ran (%d distinct), want %d once each", len(committed), distinct, n-1)
	}
	if ids := claimIDs(t, db); !slices.Equal(ids, []string{"t7"}) {
		t.Fatalf("claimed %v, want only the refused [t7]", ids)
	}
}

// A receipt waiting for its relay does not send the buyer's next grant
// down the slow path: it changes nothing that grant does.
func TestInline_PendingReceiptHoldsNoGrantBack(t *testing.T) {
	db, _ := inlineStore(t)
	g := grant("t1", "p1")
	r := storegate.Command{ID: storegate.ReceiptID("t1"), Kind: storegate.KindReceipt, Source: "src", Target: "receipts",
		PlayerID: "p1", Order: "t1", Receipt: &storegate.Receipt{To: "b@example.com"}}
	ev := storegate.Event{Source: "src", Type: "order_paid", Key: "o1", PlayerID: "p1", Body: []byte(`{}`)}
	if _, _, err := db.Accept(context.Background(), ev, []storegate.Command{g, r}, storegate.Answer{Status: 204}); err != nil {
		t.Fatal(err)
	}
	wantCommand(t, db, "t1", storegate.StateDone, true)
	if state, err := db.CommandState(context.Background(), r.ID); err != nil || state != storegate.StatePending {
		t.Fatalf("receipt %s, %v; want pending", state, err)
	}
	acceptOne(t, db, "o2", grant("t2", "p1"))
	wantCommand(t, db, "t2", storegate.StateDone, true)
	if state, err := db.CommandState(context.Background(), "nope"); err != nil || state != "" {
		t.Errorf("an unknown command's state %q, %v", state, err)
	}
}
