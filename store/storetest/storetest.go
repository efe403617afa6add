// Package storetest is the conformance suite every store implementation must
// pass: race-free dedupe, one transaction per event, leases that survive a
// crashed worker, and outcomes recorded only by the lease holder.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"storegate"
	"storegate/internal/fakeclock"
	"storegate/store"
	"storegate/store/engine"
)

// Opener opens an empty store whose clock is now.
type Opener func(t testing.TB, now func() time.Time) *store.DB

// Start is the fake clock's starting time in every test.
var Start = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Run runs the whole suite against open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"AcceptOnce", testAcceptOnce},
		{"AcceptConcurrentDuplicates", testAcceptConcurrentDuplicates},
		{"AcceptDistinctConcurrently", testAcceptDistinctConcurrently},
		{"CommandQueuedOnce", testCommandQueuedOnce},
		{"ClaimLeases", testClaimLeases},
		{"LeaseExpiryReclaims", testLeaseExpiryReclaims},
		{"CompleteNeedsLease", testCompleteNeedsLease},
		{"CompleteAllRecordsEachOutcome", testCompleteAllRecordsEachOutcome},
		{"RetrySchedulesAndRecords", testRetrySchedulesAndRecords},
		{"WaitSpendsNothing", testWaitSpendsNothing},
		{"ConcurrentClaimersNeverShare", testConcurrentClaimersNeverShare},
		{"FailedWriteLeavesNothing", testFailedWriteLeavesNothing},
		{"LinkFirstWins", testLinkFirstWins},
		{"AcceptBatchIsolatesAFailure", testAcceptBatchIsolatesAFailure},
		{"DeadLettersList", testDeadLettersList},
		{"DeadLetterReplay", testDeadLetterReplay},
		{"DeadLetterReplayByFilter", testDeadLetterReplayByFilter},
		{"DeadLetterDiscard", testDeadLetterDiscard},
		{"PartnerPayOnce", testPartnerPayOnce},
		{"PartnerPayHolds", testPartnerPayHolds},
		{"PartnerCancelOnce", testPartnerCancelOnce},
		{"PartnerCart", testPartnerCart},
		{"OrderTracking", testOrderTracking},
		{"OrderTrackingBatched", testOrderTrackingBatched},
		{"FulfillCursorNeverRewinds", testFulfillCursorNeverRewinds},
		{"SearchLookups", testSearchLookups},
		{"Backlogs", testBacklogs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func event(key string) storegate.Event {
	return storegate.Event{Source: "src", Type: "order_paid", Key: key, PlayerID: "p1", Body: []byte(`{"k":"` + key + `"}`)}
}

func fulfill(id string) storegate.Command {
	return storegate.Command{ID: id, Kind: storegate.KindFulfill, Source: "src", Target: "ledger", PlayerID: "p1",
		Lines: []storegate.Line{{SKU: "crystals_100", Quantity: 1, Grants: []storegate.Grant{{Currency: "CRYSTALS", Amount: 100}}}}}
}

var answer204 = storegate.Answer{Status: 204}

func testAcceptOnce(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	first, dup, err := db.Accept(ctx, event("o1"), []storegate.Command{fulfill("t1")}, answer204)
	if err != nil {
		t.Fatal(err)
	}
	if dup || first.Status != 204 {
		t.Fatalf("first accept = %+v (duplicate %v), want stored with 204", first, dup)
	}
	// The duplicate carries a different answer; the stored one must come back.
	again, dup, err := db.Accept(ctx, event("o1"), []storegate.Command{fulfill("t1-other")}, storegate.Answer{Status: 200, Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if !dup || again.Status != 204 || len(again.Body) != 0 {
		t.Fatalf("duplicate accept = %+v (duplicate %v), want the stored 204", again, dup)
	}
	if n, _ := db.EventCount(ctx, "src"); n != 1 {
		t.Fatalf("events = %d, want 1", n)
	}
	if _, err := db.Command(ctx, "t1-other"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("duplicate queued its command: err = %v", err)
	}
}

func testAcceptConcurrentDuplicates(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	const copies = 50
	var wg sync.WaitGroup
	results := make([]storegate.Answer, copies)
	dups := make([]bool, copies)
	errs := make([]error, copies)
	for i := range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], dups[i], errs[i] = db.Accept(ctx, event("same"), []storegate.Command{fulfill("t-same")},
				storegate.Answer{Status: 204, Body: []byte(fmt.Sprint(i))})
		}()
	}
	wg.Wait()
	firsts := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("copy %d: %v", i, errs[i])
		}
		if !dups[i] {
			firsts++
		}
		if string(r.Body) != string(results[0].Body) {
			t.Fatalf("copy %d answered %q, copy 0 answered %q", i, r.Body, results[0].Body)
		}
	}
	if firsts != 1 {
		t.Fatalf("%d copies were stored as new, want exactly 1", firsts)
	}
	claimed, err := db.Claim(ctx, "w", "ledger", 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 {
		t.Fatalf("claimed %d commands, want 1", len(claimed))
	}
}

func testAcceptDistinctConcurrently(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := db.Accept(ctx, event(fmt.Sprint("o", i)), []storegate.Command{fulfill(fmt.Sprint("t", i))}, answer204); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got, _ := db.EventCount(ctx, ""); got != n {
		t.Fatalf("events = %d, want %d", got, n)
	}
	depth, err := db.Depth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if depth[storegate.StatePending] != n {
		t.Fatalf("pending = %d, want %d", depth[storegate.StatePending], n)
	}
}

func testCommandQueuedOnce(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	// Two distinct events owing the same command (a refund and a cancel of
	// one order) queue it once.
	for _, key := range []string{"refund:1", "cancel:1"} {
		if _, _, err := db.Accept(ctx, event(key), []storegate.Command{fulfill("t1.revoke")}, answer204); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := db.Claim(ctx, "w", "ledger", 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 {
		t.Fatalf("claimed %d, want 1", len(claimed))
	}
}

func accept(t *testing.T, db *store.DB, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, _, err := db.Accept(context.Background(), event("e-"+id), []storegate.Command{fulfill(id)}, answer204); err != nil {
			t.Fatal(err)
		}
	}
}

func testClaimLeases(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	accept(t, db, "a", "b", "c")
	first, err := db.Claim(ctx, "w1", "ledger", 2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	second, err := db.Claim(ctx, "w2", "ledger", 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || len(second) != 1 {
		t.Fatalf("claims = %d then %d, want 2 then 1", len(first), len(second))
	}
	if first[0].Command.ID != "a" || first[0].Command.Lines[0].Grants[0].Amount != 100 {
		t.Fatalf("first claimed = %+v, want command a with its grants, oldest first", first[0].Command)
	}
	for _, c := range first {
		if c.Command.ID == second[0].Command.ID {
			t.Fatalf("command %s claimed twice", c.Command.ID)
		}
	}
}

func testLeaseExpiryReclaims(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := fakeclock.New(Start)
	db := open(t, clock.Now)
	accept(t, db, "a")
	if c, _ := db.Claim(ctx, "dead-worker", "ledger", 10, 30*time.Second); len(c) != 1 {
		t.Fatalf("claimed %d, want 1", len(c))
	}
	clock.Advance(29 * time.Second)
	if c, _ := db.Claim(ctx, "w2", "ledger", 10, 30*time.Second); len(c) != 0 {
		t.Fatalf("claimed a leased command before its lease expired")
	}
	clock.Advance(2 * time.Second)
	c, err := db.Claim(ctx, "w2", "ledger", 10, 30*time.Second)
	if err != nil || len(c) != 1 {
		t.Fatalf("after expiry claimed %d (err %v), want the abandoned command", len(c), err)
	}
	// The dead worker comes back and reports: its result must not count.
	err = db.Complete(ctx, store.Completion{ID: "a", Owner: "dead-worker", State: storegate.StateDone,
		Outcome: storegate.Outcome{Verdict: storegate.VerdictDone}, Attempt: 1})
	if !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("complete by expired owner: err = %v, want ErrLeaseLost", err)
	}
}

func testCompleteNeedsLease(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	accept(t, db, "a")
	if _, err := db.Claim(ctx, "w1", "ledger", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := db.Complete(ctx, store.Completion{ID: "a", Owner: "w1", State: storegate.StateDone,
		Outcome: storegate.Outcome{Verdict: storegate.VerdictDone}, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	ci, err := db.Command(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if ci.State != storegate.StateDone || ci.Attempts != 1 {
		t.Fatalf("command = %s after %d attempts, want done after 1", ci.State, ci.Attempts)
	}
	if c, _ := db.Claim(ctx, "w2", "ledger", 10, time.Minute); len(c) != 0 {
		t.Fatalf("a done command was claimed again")
	}
}

// Outcomes recorded together are each recorded as alone: first-time
// successes (written together, more than one statement's worth of them),
// a retry, a dead letter and a success after a retry, each with its
// attempts; a command whose lease another worker took is ErrLeaseLost and
// stays that worker's.
func testCompleteAllRecordsEachOutcome(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := fakeclock.New(Start)
	db := open(t, clock.Now)
	const firsts = 600
	var ids []string
	for i := range firsts {
		ids = append(ids, fmt.Sprintf("ok-%03d", i))
	}
	accept(t, db, "taken")
	if c, _ := db.Claim(ctx, "w0", "ledger", 1, 30*time.Second); len(c) != 1 {
		t.Fatalf("claimed %d, want taken", len(c))
	}
	clock.Advance(time.Minute)   // w0's lease is over: w1 claims taken too, then w2 takes it from w1
	var many []storegate.Command // one event's, in one write
	for _, id := range append(ids, "retry", "dead", "second") {
		many = append(many, fulfill(id))
	}
	if _, _, err := db.Accept(ctx, event("many"), many, answer204); err != nil {
		t.Fatal(err)
	}
	if c, err := db.Claim(ctx, "w1", "ledger", firsts+10, 30*time.Second); err != nil || len(c) != firsts+4 {
		t.Fatalf("claimed %d (%v), want %d", len(c), err, firsts+4)
	}
	clock.Advance(time.Minute)
	if c, _ := db.Claim(ctx, "w2", "ledger", 1000, 30*time.Second); len(c) != firsts+4 {
		t.Fatalf("w2 claimed %d, want every command back", len(c))
	}
	w := "w2"
	done := storegate.Outcome{Verdict: storegate.VerdictDone}
	var cs []store.Completion
	for _, id := range ids {
		cs = append(cs, store.Completion{ID: id, Owner: w, State: storegate.StateDone, Outcome: done, Attempt: 1})
	}
	retryAt := clock.Now().Add(time.Hour)
	cs = append(cs,
		store.Completion{ID: "retry", Owner: w, State: storegate.StatePending, NextAt: retryAt, Attempt: 1,
			Outcome: storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 503, Message: "later"}},
		store.Completion{ID: "dead", Owner: w, State: storegate.StateDead, Attempt: 1,
			Outcome: storegate.Outcome{Verdict: storegate.VerdictDead, HTTPStatus: 400, Code: "BAD", Message: "never"}},
		store.Completion{ID: "second", Owner: w, State: storegate.StateDone, Attempt: 2, Outcome: done},
		store.Completion{ID: "taken", Owner: "w1", State: storegate.StateDone, Attempt: 1, Outcome: done})
	errs := db.CompleteAll(ctx, cs)
	for i, err := range errs {
		if want := cs[i].ID == "taken"; errors.Is(err, store.ErrLeaseLost) != want || !want && err != nil {
			t.Errorf("%s: err = %v", cs[i].ID, err)
		}
	}
	for _, tc := range []struct {
		id       string
		state    storegate.State
		attempts int
		rows     int
	}{
		{ids[0], storegate.StateDone, 1, 0}, {ids[firsts-1], storegate.StateDone, 1, 0},
		{"retry", storegate.StatePending, 1, 1}, {"dead", storegate.StateDead, 1, 1}, {"second", storegate.StateDone, 1, 1},
		{"taken", storegate.StatePending, 0, 0},
	} {
		ci, err := db.Command(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.Attempts(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if ci.State != tc.state || ci.Attempts != tc.attempts || len(rows) != tc.rows {
			t.Errorf("%s: %s, %d attempts, %d attempt rows; want %s, %d, %d", tc.id, ci.State, ci.Attempts, len(rows), tc.state, tc.attempts, tc.rows)
		}
	}
	if ci, _ := db.Command(ctx, "retry"); !ci.NextAt.Equal(retryAt) {
		t.Errorf("retry is due at %v, want %v", ci.NextAt, retryAt)
	}
	if page, err := db.DeadLetters(ctx, store.DeadLetterFilter{}); err != nil || len(page.DeadLetters) != 1 {
		t.Errorf("dead letters %+v (%v), want dead alone", page.DeadLetters, err)
	}
	// w2 still holds taken: its own completion lands.
	if err := db.Complete(ctx, store.Completion{ID: "taken", Owner: w, State: storegate.StateDone, Attempt: 1, Outcome: done}); err != nil {
		t.Errorf("the lease holder's completion of taken: %v", err)
	}
}

func testRetrySchedulesAndRecords(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := fakeclock.New(Start)
	db := open(t, clock.Now)
	accept(t, db, "a")
	if _, err := db.Claim(ctx, "w1", "ledger", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	err := db.Complete(ctx, store.Completion{ID: "a", Owner: "w1", State: storegate.StatePending,
		NextAt: Start.Add(10 * time.Second), Attempt: 1, StartedAt: Start, Duration: time.Millisecond,
		Outcome: storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 503, Message: "unavailable"}})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := db.Claim(ctx, "w1", "ledger", 1, time.Minute); len(c) != 0 {
		t.Fatal("a retried command was due before its next attempt time")
	}
	clock.Advance(10 * time.Second)
	c, err := db.Claim(ctx, "w1", "ledger", 1, time.Minute)
	if err != nil || len(c) != 1 || c[0].Attempts != 1 {
		t.Fatalf("claim after backoff = %+v (err %v), want the command with 1 attempt spent", c, err)
	}
	ci, _ := db.Command(ctx, "a")
	if ci.LastError == "" {
		t.Fatal("last error not recorded")
	}
	attempts, err := db.Attempts(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 1 || attempts[0].HTTPStatus != 503 || attempts[0].Verdict != storegate.VerdictRetry {
		t.Fatalf("attempts = %+v, want one retry with status 503", attempts)
	}
}

func testWaitSpendsNothing(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	accept(t, db, "a")
	if _, err := db.Claim(ctx, "w1", "ledger", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := db.Complete(ctx, store.Completion{ID: "a", Owner: "w1", State: storegate.StatePending,
		NextAt: Start, Outcome: storegate.Outcome{Verdict: storegate.VerdictWait}}); err != nil {
		t.Fatal(err)
	}
	ci, _ := db.Command(ctx, "a")
	if ci.Attempts != 0 {
		t.Fatalf("attempts = %d after a wait, want 0", ci.Attempts)
	}
	if a, _ := db.Attempts(ctx, "a"); len(a) != 0 {
		t.Fatalf("a wait recorded %d attempts", len(a))
	}
}

func testConcurrentClaimersNeverShare(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	const n = 300
	for i := range n {
		accept(t, db, fmt.Sprint("c", i))
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprint("w", w)
			for {
				claimed, err := db.Claim(ctx, owner, "ledger", 7, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(claimed) == 0 {
					return
				}
				mu.Lock()
				for _, c := range claimed {
					if prev, ok := seen[c.Command.ID]; ok {
						t.Errorf("command %s claimed by %s and %s", c.Command.ID, prev, owner)
					}
					seen[c.Command.ID] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d distinct commands, want %d", len(seen), n)
	}
}

func testFailedWriteLeavesNothing(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	boom := errors.New("boom")
	var wg sync.WaitGroup
	// Failing writes interleaved with good ones, so some share a batch.
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				err := db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
					if _, err := tx.Exec(ctx, `INSERT INTO links (source, order_id, transaction_id, answer, created_at) VALUES (?, ?, ?, ?, ?)`,
						"bad", fmt.Sprint(i), "x", []byte("{}"), 0); err != nil {
						return err
					}
					return boom
				})
				if !errors.Is(err, boom) {
					t.Errorf("failing write returned %v, want boom", err)
				}
				return
			}
			if _, _, err := db.Accept(ctx, event(fmt.Sprint("good", i)), nil, answer204); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var bad int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM links WHERE source = 'bad'`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Fatalf("%d rows of failed writes were committed", bad)
	}
	if n, _ := db.EventCount(ctx, "src"); n != 20 {
		t.Fatalf("good events = %d, want 20", n)
	}
}

func testLinkFirstWins(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	a, err := db.Link(ctx, "x", "42", "txn-1", []byte(`{"id":"txn-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.Link(ctx, "x", "42", "txn-2", []byte(`{"id":"txn-2"}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != `{"id":"txn-1"}` || string(b) != string(a) {
		t.Fatalf("links answered %s then %s, want the first answer twice", a, b)
	}
}

// Accepts committed together are written with shared statements; one that
// cannot be stored (here: no body, which the schema forbids) must fail alone.
func testAcceptBatchIsolatesAFailure(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	for round := range 5 {
		var wg sync.WaitGroup
		errs := make([]error, 30)
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev := event(fmt.Sprintf("r%d-%d", round, i))
				if i == 7 {
					ev.Body = nil
				}
				_, _, errs[i] = db.Accept(ctx, ev, []storegate.Command{fulfill(fmt.Sprintf("t%d-%d", round, i))}, answer204)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if (i == 7) != (err != nil) {
				t.Fatalf("round %d accept %d: err = %v", round, i, err)
			}
		}
	}
	if n, _ := db.EventCount(ctx, "src"); n != 5*29 {
		t.Fatalf("events = %d, want %d", n, 5*29)
	}
	if _, err := db.Command(ctx, "t0-7"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the failed accept queued its command: %v", err)
	}
}
