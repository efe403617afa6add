package dispatch_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"storegate"
	"storegate/dispatch"
	"storegate/internal/fakeclock"
	"storegate/internal/pgtest"
	"storegate/ledger"
	"storegate/store"
	"storegate/store/engine"
)

// ---- an in-store target ----

// rowTarget is a target and a store.Applier whose effect is a row in the effects table, one
// per command, numbered in the order the rows were written. It is
// idempotent by command id, and a revoke takes effect only once the
// fulfillment it reverses has (it answers a deferred retry before).
type rowTarget struct {
	db *store.DB
	// answer is the verdict given after the row is written; nil is done.
	answer func(storegate.Command) storegate.Outcome
	// slow names the commands that cannot be applied in the transaction;
	// nil is none.
	slow func(storegate.Command) bool
	// during, when set, runs inside DeliverTx after the row is written.
	during func(context.Context, *engine.Tx, storegate.Command) error
	// panics names a command whose DeliverTx panics after writing its row.
	panics string
	// block, when set, holds DeliverTx of the command named blockID until
	// it is closed.
	block   chan struct{}
	blockID string

	mu    sync.Mutex
	calls []string // "tx:ID" or "deliver:ID", in call order
	// hooks is, per command id, len(calls) at each run of its OnCommit
	// hook: how many deliveries had started when its write committed.
	hooks map[string][]int
}

func newRowTarget(t *testing.T, db *store.DB) *rowTarget {
	t.Helper()
	err := db.Write(context.Background(), func(ctx context.Context, tx *engine.Tx) error {
		_, err := tx.Exec(ctx, `CREATE TABLE effects (id TEXT PRIMARY KEY, player TEXT NOT NULL, via TEXT NOT NULL, n INTEGER NOT NULL)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return &rowTarget{db: db, hooks: map[string][]int{}}
}

func (r *rowTarget) note(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

func (r *rowTarget) Takes(c storegate.Command) bool { return r.slow == nil || !r.slow(c) }

func (r *rowTarget) Apply(ctx context.Context, tx *engine.Tx, cs []storegate.Command) storegate.Outcome {
	for _, c := range cs {
		if out := r.applyOne(ctx, tx, c); out.Verdict != storegate.VerdictDone {
			return out
		}
	}
	return storegate.Outcome{Verdict: storegate.VerdictDone}
}

func (r *rowTarget) applyOne(ctx context.Context, tx *engine.Tx, c storegate.Command) storegate.Outcome {
	r.note("tx:" + c.ID)
	if c.ID == r.blockID && r.block != nil {
		<-r.block
	}
	if out, ok := notGrantedYet(ctx, tx.QueryRow, c); !ok {
		return out
	}
	if err := insertEffect(ctx, tx, c, "tx"); err != nil {
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "STORE", Message: err.Error()}
	}
	id := c.ID
	tx.OnCommit(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.hooks[id] = append(r.hooks[id], len(r.calls))
	})
	if r.during != nil {
		if err := r.during(ctx, tx, c); err != nil {
			return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "STORE", Message: err.Error()}
		}
	}
	if c.ID == r.panics {
		panic("index out of range in the target")
	}
	return r.outcome(c)
}

func (r *rowTarget) Deliver(ctx context.Context, c storegate.Command) storegate.Outcome {
	r.note("deliver:" + c.ID)
	if out, ok := notGrantedYet(ctx, func(ctx context.Context, q string, args ...any) scanner {
		return r.db.QueryRow(ctx, q, args...)
	}, c); !ok {
		return out
	}
	if err := r.db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error { return insertEffect(ctx, tx, c, "deliver") }); err != nil {
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "STORE", Message: err.Error()}
	}
	return r.outcome(c)
}

func (r *rowTarget) outcome(c storegate.Command) storegate.Outcome {
	if r.answer == nil {
		return storegate.Outcome{Verdict: storegate.VerdictDone}
	}
	return r.answer(c)
}

func (r *rowTarget) callList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *rowTarget) hookRuns(id string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.hooks[id])
}

type scanner interface{ Scan(...any) error }

// notGrantedYet answers a deferred retry for a revoke whose fulfillment has
// no effect (yet), as seen by query.
func notGrantedYet[S scanner](ctx context.Context, query func(context.Context, string, ...any) S, c storegate.Command) (storegate.Outcome, bool) {
	if c.Kind != storegate.KindRevoke || c.Reverses == "" {
		return storegate.Outcome{}, true
	}
	var n int
	if err := query(ctx, `SELECT COUNT(*) FROM effects WHERE id = ?`, c.Reverses).Scan(&n); err != nil {
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "STORE", Message: err.Error()}, false
	}
	if n == 0 {
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Deferred: true, Code: "NOT_GRANTED_YET",
			Message: "the fulfillment " + c.Reverses + " has not been applied"}, false
	}
	return storegate.Outcome{}, true
}

func insertEffect(ctx context.Context, tx *engine.Tx, c storegate.Command, via string) error {
	_, err := tx.Exec(ctx, `INSERT INTO effects (id, player, via, n) VALUES (?, ?, ?, (SELECT COUNT(*) FROM effects))
		ON CONFLICT (id) DO NOTHING`, c.ID, c.PlayerID, via)
	return err
}

// effect is one row of the effects table.
type effect struct{ ID, Player, Via string }

// effectsOf lists the effects table in the order the rows were written.
func effectsOf(t *testing.T, db *store.DB) []effect {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT id, player, via FROM effects ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []effect
	for rows.Next() {
		var e effect
		if err := rows.Scan(&e.ID, &e.Player, &e.Via); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func effectIDs(es []effect) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func leaseOwner(t *testing.T, db *store.DB, id string) string {
	t.Helper()
	var owner string
	if err := db.QueryRow(context.Background(), `SELECT lease_owner FROM outbox WHERE id = ?`, id).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	return owner
}

// fulfillAt is a fulfillment created at seconds after start.
func fulfillAt(id, player string, seconds int) storegate.Command {
	c := command(id, player, "ledger")
	c.CreatedAt = start.Add(time.Duration(seconds) * time.Second)
	return c
}

// revokeAt is a full revoke of reverses, created at seconds after start.
func revokeAt(id, player, reverses string, seconds int) storegate.Command {
	c := fulfillAt(id, player, seconds)
	c.Kind, c.Reverses, c.Lines, c.Reason = storegate.KindRevoke, reverses, nil, "refund"
	return c
}

// wantDone checks that each command is done after one attempt.
func wantDone(t *testing.T, db *store.DB, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if ci := info(t, db, id); ci.State != storegate.StateDone || ci.Attempts != 1 || ci.LastError != "" {
			t.Errorf("%s: %s with %d attempts (%q), want done with 1", id, ci.State, ci.Attempts, ci.LastError)
		}
	}
}

// overtaken is the store as a dispatcher sees it when another dispatcher
// takes one command over right after the claim (its lease was thought
// expired): by delivery time the lease of lost belongs to someone else.
type overtaken struct {
	*store.DB
	lost string
}

func (q overtaken) Claim(ctx context.Context, owner, target string, n int, lease time.Duration) ([]store.Claimed, error) {
	claimed, err := q.DB.Claim(ctx, owner, target, n, lease)
	if err != nil || q.lost == "" {
		return claimed, err
	}
	err = q.DB.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		return stealLease(ctx, tx, q.lost)
	})
	return claimed, err
}

func stealLease(ctx context.Context, tx *engine.Tx, id string) error {
	_, err := tx.Exec(ctx, `UPDATE outbox SET lease_owner = 'someone-else' WHERE id = ?`, id)
	return err
}

// ---- tests ----

// A done verdict commits the target's effect and the command's completion
// together, and the target's OnCommit hook runs.
func TestRunOnceInTx_Done(t *testing.T) {
	clock := fakeclock.New(start)
	db := openStore(t, clock)
	target := newRowTarget(t, db)
	enqueue(t, db, fulfillAt("t1", "p1", 0))
	obs := &observer{}
	d := newDispatcher(t, db, map[string]dispatch.Target{"ledger": target}, config(clock), obs)

	if got, want := runOnce(t, d), 1; got != want {
		t.Fatalf("claimed %d, want %d", got, want)
	}
	if got, want := effectsOf(t, db), []effect{{"t1", "p1", "tx"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("effects = %v, want %v", got, want)
	}
	wantDone(t, db, "t1")
	if a, err := db.Attempts(context.Background(), "t1"); err != nil || len(a) != 0 {
		t.Errorf("attempts recorded %+v (err %v), want none for a first-time success", a, err)
	}
	if got := target.hookRuns("t1"); len(got) != 1 {
		t.Errorf("OnCommit hook ran %d times, want once", len(got))
	}
	if got, want := target.callList(), []string{"tx:t1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("target calls = %v, want %v", got, want)
	}
	if got, want := obs.list(), []string{"ledger:done"}; !reflect.DeepEqual(got, want) {
		t.Errorf("observer heard %v, want %v", got, want)
	}
	clock.Advance(time.Hour)
	if got := runOnce(t, d); got != 0 {
		t.Errorf("claimed %d after done, want 0", got)
	}
}

// Any verdict but done undoes what the target wrote, and its OnCommit hooks
// never run, while the completion is recorded; a command beside it in the
// same write is not disturbed.
func TestRunOnceInTx_NotDoneUndoesTheEffect(t *testing.T) {
	tests := []struct {
		name         string
		out          storegate.Outcome
		wantState    storegate.State
		wantAttempts int
		wantNext     time.Duration // from now; -1 for a dead letter
		wantErr      []string
	}{
		{"deferred retry (revoke before its grant)",
			storegate.Outcome{Verdict: storegate.VerdictRetry, Deferred: true, Code: "NOT_GRANTED_YET", Message: "fulfillment f0 not applied"},
			storegate.StatePending, 0, time.Second, []string{"retry", "NOT_GRANTED_YET", "fulfillment f0 not applied"}},
		{"retry with a hint",
			storegate.Outcome{Verdict: storegate.VerdictRetry, RetryAfter: time.Minute, Code: "STORE", Message: "database is locked"},
			storegate.StatePending, 1, time.Minute, []string{"retry", "STORE", "database is locked"}},
		{"dead",
			storegate.Outcome{Verdict: storegate.VerdictDead, Code: "INVALID_PARAMETER", Message: "grant names neither a currency nor an item"},
			storegate.StateDead, 1, -1, []string{"dead", "INVALID_PARAMETER", "grant names neither"}},
		{"wait spends nothing and keeps its place",
			storegate.Outcome{Verdict: storegate.VerdictWait, Code: "BREAKER_OPEN"},
			storegate.StatePending, 0, 0, []string{"wait", "BREAKER_OPEN"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(start)
			db := openStore(t, clock)
			target := newRowTarget(t, db)
			target.answer = func(c storegate.Command) storegate.Outcome {
				if c.ID == "t0" {
					return tc.out
				}
				return storegate.Outcome{Verdict: storegate.VerdictDone}
			}
			// t0 fails between two commands that succeed, in one write.
			enqueue(t, db, fulfillAt("before", "p1", 0), fulfillAt("t0", "p2", 1), fulfillAt("after", "p3", 2))
			obs := &observer{}
			d := newDispatcher(t, db, map[string]dispatch.Target{"ledger": target}, config(clock), obs)

			if got, want := runOnce(t, d), 3; got != want {
				t.Fatalf("claimed %d, want %d", got, want)
			}
			if got, want := effectsOf(t, db), []effect{{"before", "p1", "tx"}, {"after", "p3", "tx"}}; !reflect.DeepEqual(got, want) {
				t.Errorf("effects = %v, want %v (t0's undone)", got, want)
			}
			ci := info(t, db, "t0")
			if ci.State != tc.wantState || ci.Attempts != tc.wantAttempts {
				t.Errorf("t0: %s with %d attempts, want %s with %d", ci.State, ci.Attempts, tc.wantState, tc.wantAttempts)
			}
			if tc.wantNext >= 0 {
				if got, want := ci.NextAt, clock.Now().Add(tc.wantNext); !got.Equal(want) {
					t.Errorf("t0 next at now%+v, want now+%v", got.Sub(clock.Now()), tc.wantNext)
				}
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(ci.LastError, want) {
					t.Errorf("t0 last error = %q, want it to contain %q", ci.LastError, want)
				}
			}
			attempts, err := db.Attempts(context.Background(), "t0")
			if err != nil {
				t.Fatal(err)
			}
			if got := len(attempts); got != tc.wantAttempts {
				t.Errorf("t0 has %d attempt records, want %d", got, tc.wantAttempts)
			} else if got > 0 && (attempts[0].Code != tc.out.Code || attempts[0].N != 1) {
				t.Errorf("t0's attempt record = %+v, want attempt 1 with code %s", attempts[0], tc.out.Code)
			}
			if got := target.hookRuns("t0"); len(got) != 0 {
				t.Errorf("t0's OnCommit hook ran %d times, want never (its write was undone)", len(got))
			}
			wantDone(t, db, "before", "after")
			for _, id := range []string{"before", "after"} {
				if got := target.hookRuns(id); len(got) != 1 {
					t.Errorf("%s's OnCommit hook ran %d times, want once", id, len(got))
				}
			}
			if got, want := obs.list(), []string{"ledger:done", "ledger:" + string(tc.out.Verdict), "ledger:done"}; !reflect.DeepEqual(got, want) {
				t.Errorf("observer heard %v, want %v", got, want)
			}
		})
	}
}

// A command whose lease is lost by the time its completion is written is
// undone entirely, effect and completion: the new lease holder's result
// stands. The other commands of the same write are done, and once the lease
// ends the command is delivered again, once.
func TestRunOnceInTx_LeaseLost(t *testing.T) {
	tests := []struct {
		name string
		// lost is the command another dispatcher takes over right after
		// the claim.
		lost string
		// during runs inside the target's transaction.
		during    func(context.Context, *engine.Tx, storegate.Command) error
		wantOwner string
	}{
		{name: "taken over after the claim", lost: "t1", wantOwner: "someone-else"},
		{name: "taken away inside the delivery's transaction",
			during: func(ctx context.Context, tx *engine.Tx, c storegate.Command) error {
				if c.ID != "t1" {
					return nil
				}
				return stealLease(ctx, tx, c.ID)
			},
			// The steal is one of t1's writes, undone with the rest: the
			// lease stays this dispatcher's until it expires.
			wantOwner: "dispatcher-a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(start)
			db := openStore(t, clock)
			target := newRowTarget(t, db)
			target.during = tc.during
			enqueue(t, db, fulfillAt("t0", "p0", 0), fulfillAt("t1", "p1", 1), fulfillAt("t2", "p2", 2))
			cfg := config(clock)
			obs := &observer{}
			q := overtaken{DB: db, lost: tc.lost}
			d := newDispatcher(t, q, map[string]dispatch.Target{"ledger": target}, cfg, obs)

			if got, want := runOnce(t, d), 3; got != want {
				t.Fatalf("claimed %d, want %d", got, want)
			}
			// The first pass, all three under one savepoint, fails at t1's
			// completion and is undone; the second gives each command its
			// own savepoint.
			if got, want := target.callList(), []string{"tx:t0", "tx:t1", "tx:t2", "tx:t0", "tx:t1", "tx:t2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("target calls = %v, want %v", got, want)
			}
			if got, want := effectIDs(effectsOf(t, db)), []string{"t0", "t2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("effects = %v, want %v (t1's undone)", got, want)
			}
			ci := info(t, db, "t1")
			if ci.State != storegate.StatePending || ci.Attempts != 0 || ci.LastError != "" {
				t.Errorf("t1: %s with %d attempts (%q), want pending with 0 and no error: nothing recorded", ci.State, ci.Attempts, ci.LastError)
			}
			if got := leaseOwner(t, db, "t1"); got != tc.wantOwner {
				t.Errorf("t1's lease belongs to %q, want %q", got, tc.wantOwner)
			}
			if got := target.hookRuns("t1"); len(got) != 0 {
				t.Errorf("t1's OnCommit hook ran %d times, want never", len(got))
			}
			wantDone(t, db, "t0", "t2")
			if got, want := obs.list(), []string{"ledger:done", "ledger:done"}; !reflect.DeepEqual(got, want) {
				t.Errorf("observer heard %v, want %v (nothing for the lost command)", got, want)
			}

			// Nobody completes t1 (the other holder died): once the lease
			// ends it is delivered again, and takes effect once.
			target.during = nil
			d = newDispatcher(t, db, map[string]dispatch.Target{"ledger": target}, cfg, nil)
			if got := runOnce(t, d); got != 0 {
				t.Fatalf("claimed %d while the lease held, want 0", got)
			}
			clock.Advance(cfg.Lease + time.Second)
			if got, want := runOnce(t, d), 1; got != want {
				t.Fatalf("claimed %d after the lease ended, want %d", got, want)
			}
			wantDone(t, db, "t1")
			if got, want := effectIDs(effectsOf(t, db)), []string{"t0", "t2", "t1"}; !reflect.DeepEqual(got, want) {
				t.Errorf("effects = %v, want %v", got, want)
			}
		})
	}
}

// A claim larger than one in-transaction write is delivered whole, each
// command once, each player's in creation order, though the writes of a wave
// (no player in two) run concurrently.
func TestRunOnceInTx_ManyChunks(t *testing.T) {
	clock := fakeclock.New(start)
	db := openStore(t, clock)
	target := newRowTarget(t, db)
	const n = 11 // three writes of up to four commands
	var cmds []storegate.Command
	for i := range n {
		cmds = append(cmds, fulfillAt(fmt.Sprintf("t%02d", i), fmt.Sprint("p", i%5), i))
	}
	for i := n - 1; i >= 0; i-- { // queued newest first: creation time decides
		enqueue(t, db, cmds[i])
	}
	d := newDispatcher(t, db, map[string]dispatch.Target{"ledger": target}, config(clock), nil)

	if got := runOnce(t, d); got != n {
		t.Fatalf("claimed %d, want %d", got, n)
	}
	effects := effectsOf(t, db)
	if len(effects) != n {
		t.Errorf("%d effects, want %d: %v", len(effects), n, effects)
	}
	gotOrder, wantOrder := map[string][]string{}, map[string][]string{}
	for _, e := range effects {
		gotOrder[e.Player] = append(gotOrder[e.Player], e.ID)
	}
	for _, c := range cmds {
		wantOrder[c.PlayerID] = append(wantOrder[c.PlayerID], c.ID)
		wantDone(t, db, c.ID)
	}
	if !reflect.DeepEqual(gotOrder, wantOrder) {
		t.Errorf("applied per player as %v, want %v", gotOrder, wantOrder)
	}
	calls := target.callList()
	for _, c := range cmds {
		if got := slices.Index(calls, "tx:"+c.ID); got < 0 || slices.Index(calls[got+1:], "tx:"+c.ID) >= 0 {
			t.Errorf("%s delivered other than once: %v", c.ID, calls)
		}
	}
	// Each hook runs once, when its write has committed.
	for _, c := range cmds {
		if got := target.hookRuns(c.ID); len(got) != 1 {
			t.Errorf("%s's hook ran after %v deliveries, want once", c.ID, got)
		}
	}
	clock.Advance(time.Hour)
	if got := runOnce(t, d); got != 0 {
		t.Errorf("claimed %d after all were done, want 0", got)
	}
}

// Which way a lane's commands go when it has an Applier: in the store's
// transaction when the Applier takes the command, else through Deliver. Either way a player's fulfillment takes effect before its revoke
// within one RunOnce, so the revoke needs no retry.
func TestRunOnceInTx_Paths(t *testing.T) {
	isRevoke := func(c storegate.Command) bool { return c.Kind == storegate.KindRevoke }
	tests := []struct {
		name    string
		queue   func(*store.DB) dispatch.Queue
		slow    func(storegate.Command) bool
		wantVia map[string]string // by kind
	}{
		{"all in the transaction", func(db *store.DB) dispatch.Queue { return db }, nil,
			map[string]string{"fulfill": "tx", "revoke": "tx"}},
		{"revokes through Deliver, after the transaction", func(db *store.DB) dispatch.Queue { return db }, isRevoke,
			map[string]string{"fulfill": "tx", "revoke": "deliver"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(start)
			db := openStore(t, clock)
			target := newRowTarget(t, db)
			target.slow = tc.slow
			cmds := []storegate.Command{
				fulfillAt("a.f", "alice", 0), revokeAt("a.r", "alice", "a.f", 1),
				fulfillAt("b.f", "bob", 2), revokeAt("b.r", "bob", "b.f", 3),
			}
			// The revokes are queued first: creation time, not queue
			// order, decides.
			enqueue(t, db, cmds[1], cmds[3], cmds[0], cmds[2])
			d := newDispatcher(t, tc.queue(db), map[string]dispatch.Target{"ledger": target}, config(clock), nil)
			if got, want := runOnce(t, d), len(cmds); got != want {
				t.Fatalf("claimed %d, want %d", got, want)
			}
			var ids []string
			for _, c := range cmds {
				ids = append(ids, c.ID)
			}
			wantDone(t, db, ids...)

			effects := effectsOf(t, db)
			pos := map[string]int{}
			for i, e := range effects {
				pos[e.ID] = i
				if want := tc.wantVia[string(kindOf(cmds, e.ID))]; e.Via != want {
					t.Errorf("%s applied through %s, want %s", e.ID, e.Via, want)
				}
			}
			if len(effects) != len(cmds) {
				t.Fatalf("effects = %v, want one per command", effects)
			}
			for _, p := range [][2]string{{"a.f", "a.r"}, {"b.f", "b.r"}} {
				if pos[p[0]] > pos[p[1]] {
					t.Errorf("%s applied before %s: %v", p[1], p[0], effects)
				}
			}
			// Every in-transaction delivery comes before every other, and
			// each command is delivered once.
			calls := target.callList()
			if len(calls) != len(cmds) {
				t.Errorf("target calls = %v, want one per command", calls)
			}
			lastTx, firstDeliver := -1, len(calls)
			for i, c := range calls {
				if strings.HasPrefix(c, "tx:") {
					lastTx = i
				} else {
					firstDeliver = min(firstDeliver, i)
				}
			}
			if lastTx > firstDeliver {
				t.Errorf("target calls = %v, want the in-transaction ones first", calls)
			}
		})
	}
}

func kindOf(cmds []storegate.Command, id string) storegate.Kind {
	for _, c := range cmds {
		if c.ID == id {
			return c.Kind
		}
	}
	return ""
}

// An Applier that panics is a retry of that command alone, like a Target
// that panics: its write is undone, the attempt counts (so it ends as a dead
// letter, not redelivered forever), and the commands sharing its write are
// done.
func TestRunOnceInTx_PanicIsRetry(t *testing.T) {
	clock := fakeclock.New(start)
	db := openStore(t, clock)
	target := newRowTarget(t, db)
	target.panics = "t1"
	enqueue(t, db, fulfillAt("t0", "p0", 0), fulfillAt("t1", "p1", 1), fulfillAt("t2", "p2", 2))
	d := newDispatcher(t, db, map[string]dispatch.Target{"ledger": target}, config(clock), nil)

	if got, want := runOnce(t, d), 3; got != want {
		t.Fatalf("claimed %d, want %d", got, want)
	}
	wantPanicRecorded(t, db, "t1", "index out of range in the target")
	if got, want := effectIDs(effectsOf(t, db)), []string{"t0", "t2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("effects = %v, want %v (t1's undone)", got, want)
	}
	if got := target.hookRuns("t1"); len(got) != 0 {
		t.Errorf("t1's OnCommit hook ran %d times, want never", len(got))
	}
	wantDone(t, db, "t0", "t2")
}

// A write that outlasts the delivery timeout (stuck behind other writes)
// still commits; the dispatcher stops waiting for it without touching what
// it is still filling in (run with -race), and nothing is lost or doubled.
func TestRunOnceInTx_WriteOutlastsTimeout(t *testing.T) {
	clock := fakeclock.New(start)
	db := openStore(t, clock)
	target := newRowTarget(t, db)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the store closes: Close waits for the write
	target.block, target.blockID = release, "t1"
	enqueue(t, db, fulfillAt("t0", "p0", 0), fulfillAt("t1", "p1", 1))
	cfg := config(clock)
	cfg.Timeout = 100 * time.Millisecond // real time
	obs := &observer{}
	d := newDispatcher(t, db, map[string]dispatch.Target{"ledger": target}, cfg, obs)

	if got, want := runOnce(t, d), 2; got != want {
		t.Fatalf("claimed %d, want %d", got, want)
	}
	if got := obs.list(); len(got) != 0 {
		t.Errorf("observer heard %v before the write committed, want nothing", got)
	}
	unblock()
	deadline := time.Now().Add(10 * time.Second)
	for info(t, db, "t1").State != storegate.StateDone && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	wantDone(t, db, "t0", "t1")
	if got, want := effectIDs(effectsOf(t, db)), []string{"t0", "t1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("effects = %v, want %v", got, want)
	}
	clock.Advance(time.Hour)
	if got := runOnce(t, d); got != 0 {
		t.Errorf("claimed %d after both were done, want 0", got)
	}
}

// ledgerDialects are the stores the real ledger is dispatched on.
var ledgerDialects = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + t.TempDir() + "/s.db" }},
	{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }},
}

// openLedger opens a store on dsn, on a fake clock, with the real ledger.
func openLedger(t *testing.T, dsn string) (*store.DB, *ledger.Ledger, *fakeclock.Clock) {
	t.Helper()
	clock := fakeclock.New(start)
	db, err := store.Open(context.Background(), engine.Config{DSN: dsn, Now: clock.Now, Migrations: []engine.Migrations{ledger.Migrations()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := ledger.New(db, ledger.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return db, l, clock
}

// The real ledger, as the gateway wires it, on each store: a fulfillment and its refund dispatched in one RunOnce leave the
// wallet at 0, both done at the first attempt.
func TestRunOnceInTx_LedgerFulfillThenRevoke(t *testing.T) {
	for _, dl := range ledgerDialects {
		{
			t.Run(dl.name, func(t *testing.T) {
				db, l, clock := openLedger(t, dl.dsn(t))
				target := l
				other := fulfillAt("b.f", "bob", 2)
				enqueue(t, db, fulfillAt("a.f", "alice", 0), revokeAt("a.r", "alice", "a.f", 1), other)
				d := newDispatcher(t, db, map[string]dispatch.Target{"ledger": target}, config(clock), nil)

				if got, want := runOnce(t, d), 3; got != want {
					t.Fatalf("claimed %d, want %d", got, want)
				}
				wantDone(t, db, "a.f", "a.r", "b.f")
				for player, want := range map[string]int64{"alice": 0, "bob": 100} {
					wallets, err := l.Wallets(context.Background(), player)
					if err != nil {
						t.Fatal(err)
					}
					if len(wallets) != 1 || wallets[0].Currency != "CRYSTALS" || wallets[0].Balance != want {
						t.Errorf("%s's wallets = %+v, want CRYSTALS %d", player, wallets, want)
					}
				}
				clock.Advance(time.Hour)
				if got := runOnce(t, d); got != 0 {
					t.Errorf("claimed %d after all were done, want 0", got)
				}
			})
		}
	}
}

// chunkCounter is the ledger, recording the size of every batch it is
// handed.
type chunkCounter struct {
	*ledger.Ledger
	mu    sync.Mutex
	sizes []int
}

func (c *chunkCounter) Apply(ctx context.Context, tx *engine.Tx, cs []storegate.Command) storegate.Outcome {
	c.mu.Lock()
	c.sizes = append(c.sizes, len(cs))
	c.mu.Unlock()
	return c.Ledger.Apply(ctx, tx, cs)
}

// A chunk of queued fulfillments for the ledger goes to it at once, on each store; a chunk with one it cannot apply is applied
// one by one instead: that one is dead, the others done, each once.
func TestRunOnceInTx_LedgerChunkAtOnce(t *testing.T) {
	for _, dl := range ledgerDialects {
		t.Run(dl.name, func(t *testing.T) {
			db, l, clock := openLedger(t, dl.dsn(t))
			target := &chunkCounter{Ledger: l}
			var ids []string
			for i := range 6 {
				c := fulfillAt(fmt.Sprint("f", i), fmt.Sprint("p", i), i)
				if i == 5 {
					c.Lines[0].Grants = []storegate.Grant{{}} // grants neither a currency nor an item
				}
				enqueue(t, db, c)
				ids = append(ids, c.ID)
			}
			d := newDispatcher(t, db, map[string]dispatch.Target{"ledger": target}, config(clock), nil)
			if got := runOnce(t, d); got != 6 {
				t.Fatalf("claimed %d, want 6", got)
			}
			// The chunk of two is undone and each of it applied alone.
			slices.Sort(target.sizes)
			if got, want := target.sizes, []int{1, 1, 2, 4}; !reflect.DeepEqual(got, want) {
				t.Errorf("chunks handed over at once: %v, want %v", got, want)
			}
			wantDone(t, db, ids[:5]...)
			if ci := info(t, db, "f5"); ci.State != storegate.StateDead {
				t.Errorf("f5 is %s, want dead", ci.State)
			}
			for i := range 5 {
				if w, _ := l.Wallets(context.Background(), fmt.Sprint("p", i)); len(w) != 1 || w[0].Balance != 100 {
					t.Errorf("p%d's wallets = %+v, want CRYSTALS 100", i, w)
				}
			}
		})
	}
}
