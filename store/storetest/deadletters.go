package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"storegate"
	"storegate/internal/fakeclock"
	"storegate/store"
)

// kill takes a command through attempts failed attempts to a dead letter,
// the way the dispatcher does, at the clock's time.
func kill(t *testing.T, db *store.DB, id string, attempts int) {
	t.Helper()
	ctx := context.Background()
	ci, err := db.Command(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= attempts; n++ {
		claimed, err := db.Claim(ctx, "w", ci.Command.Target, 100, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, c := range claimed {
			if c.Command.ID == id {
				found = true
				continue
			}
			// Not ours: give it back untouched (a wait spends nothing).
			db.Complete(ctx, store.Completion{ID: c.Command.ID, Owner: "w", State: storegate.StatePending,
				NextAt: db.Now(), Outcome: storegate.Outcome{Verdict: storegate.VerdictWait}})
		}
		if !found {
			t.Fatalf("%s was not due for attempt %d", id, n)
		}
		c := store.Completion{ID: id, Owner: "w", State: storegate.StatePending, NextAt: db.Now(), Attempt: n,
			StartedAt: db.Now(), Outcome: storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 503, Message: "down"}}
		if n == attempts {
			c.State, c.NextAt = storegate.StateDead, time.Time{}
			c.Outcome = storegate.Outcome{Verdict: storegate.VerdictDead, HTTPStatus: 404, Code: "30343", Message: "AGS answered 404: no such item"}
		}
		if err := db.Complete(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
}

// command owed to a given target and player, from its own event.
func acceptFor(t *testing.T, db *store.DB, id, target, player string, kind storegate.Kind) {
	t.Helper()
	c := fulfill(id)
	c.Target, c.PlayerID, c.Kind = target, player, kind
	ev := event("e-" + id)
	ev.PlayerID = player
	if _, _, err := db.Accept(context.Background(), ev, []storegate.Command{c}, answer204); err != nil {
		t.Fatal(err)
	}
}

func ids(ds []store.DeadLetter) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func testDeadLettersList(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := fakeclock.New(Start)
	db := open(t, clock.Now)
	acceptFor(t, db, "a1", "ags", "p1", storegate.KindFulfill)
	acceptFor(t, db, "a2", "ags", "p2", storegate.KindRevoke)
	acceptFor(t, db, "s1", "studio", "p1", storegate.KindFulfill)
	acceptFor(t, db, "live", "studio", "p1", storegate.KindFulfill) // stays pending
	for _, id := range []string{"a1", "a2", "s1"} {
		clock.Advance(time.Minute)
		kill(t, db, id, 2)
	}
	t1, t2 := Start.Add(time.Minute), Start.Add(2*time.Minute) // when a1 and a2 died
	tests := []struct {
		name string
		f    store.DeadLetterFilter
		want []string
	}{
		{"all, most recent first", store.DeadLetterFilter{}, []string{"s1", "a2", "a1"}},
		{"by target", store.DeadLetterFilter{Target: "ags"}, []string{"a2", "a1"}},
		{"by kind", store.DeadLetterFilter{Kind: storegate.KindRevoke}, []string{"a2"}},
		{"by player", store.DeadLetterFilter{PlayerID: "p1"}, []string{"s1", "a1"}},
		{"by source", store.DeadLetterFilter{Source: "src"}, []string{"s1", "a2", "a1"}},
		{"by unknown source", store.DeadLetterFilter{Source: "other"}, []string{}},
		{"since", store.DeadLetterFilter{Since: t2}, []string{"s1", "a2"}},
		{"until", store.DeadLetterFilter{Until: t2}, []string{"a1"}},
		{"time range", store.DeadLetterFilter{Since: t1, Until: t2.Add(time.Second)}, []string{"a2", "a1"}},
		{"by id", store.DeadLetterFilter{ID: "a2"}, []string{"a2"}},
		{"discarded: none yet", store.DeadLetterFilter{State: storegate.StateDiscarded}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, err := db.DeadLetters(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(page.DeadLetters); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("dead letters = %v, want %v", got, tc.want)
			}
		})
	}
	// Pages of two, continued with the cursor.
	first, err := db.DeadLetters(ctx, store.DeadLetterFilter{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	second, err := db.DeadLetters(ctx, store.DeadLetterFilter{Limit: 2, Cursor: first.Next})
	if err != nil {
		t.Fatal(err)
	}
	if got := append(ids(first.DeadLetters), ids(second.DeadLetters)...); !reflect.DeepEqual(got, []string{"s1", "a2", "a1"}) || first.Next == "" {
		t.Errorf("paged = %v (next %q), want s1 a2 | a1", got, first.Next)
	}
	if _, err := db.DeadLetters(ctx, store.DeadLetterFilter{Cursor: "garbage"}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("bad cursor: err = %v, want ErrBadCursor", err)
	}
	d := first.DeadLetters[0]
	if d.Attempts != 2 || d.Target != "studio" || d.Source != "src" || d.DiedAt != Start.Add(3*time.Minute) || d.LastError == "" {
		t.Errorf("listing row = %+v, want 2 attempts, target studio, source src, died at +3m, last error", d)
	}
}

// A replay puts the command back to pending, due now, attempts reset, the
// same transaction id; the earlier attempts stay for inspection, apart
// from the new round's, and the replay is recorded with who did it.
func testDeadLetterReplay(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := fakeclock.New(Start)
	db := open(t, clock.Now)
	accept(t, db, "a")
	kill(t, db, "a", 3)
	clock.Advance(time.Hour)
	replayed, err := db.Replay(ctx, store.DeadLetterFilter{ID: "a"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(replayed, []string{"a"}) {
		t.Fatalf("replayed %v, want [a]", replayed)
	}
	claimed, err := db.Claim(ctx, "w", "ledger", 10, time.Minute)
	if err != nil || len(claimed) != 1 || claimed[0].Command.ID != "a" || claimed[0].Attempts != 0 {
		t.Fatalf("after replay claimed %+v (err %v), want a with 0 attempts spent", claimed, err)
	}
	if err := db.Complete(ctx, store.Completion{ID: "a", Owner: "w", State: storegate.StatePending, NextAt: clock.Now(), Attempt: 1,
		StartedAt: clock.Now(), Outcome: storegate.Outcome{Verdict: storegate.VerdictRetry, HTTPStatus: 500}}); err != nil {
		t.Fatal(err)
	}
	d, err := db.DeadLetter(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if d.State != storegate.StatePending || d.Attempts != 1 || d.Replays != 1 {
		t.Errorf("after replay and one failure: %s, %d attempts, %d replays; want pending, 1, 1", d.State, d.Attempts, d.Replays)
	}
	var rounds []int
	for _, a := range d.History {
		rounds = append(rounds, a.Replay*10+a.N)
	}
	if want := []int{1, 2, 3, 11}; !reflect.DeepEqual(rounds, want) {
		t.Errorf("history (replay*10+n) = %v, want %v", rounds, want)
	}
	if last := d.History[2]; last.Code != "30343" || last.HTTPStatus != 404 || last.Verdict != storegate.VerdictDead {
		t.Errorf("the fatal attempt = %+v, want dead 404 30343", last)
	}
	if len(d.Actions) != 1 || d.Actions[0].Action != "replay" || d.Actions[0].Actor != "alice" || !d.Actions[0].At.Equal(Start.Add(time.Hour)) {
		t.Errorf("actions = %+v, want one replay by alice at +1h", d.Actions)
	}
	if d.Event.Type != "order_paid" || d.Event.Key != "e-a" || string(d.Event.Body) != `{"k":"e-a"}` || d.Command.ID != "a" {
		t.Errorf("event = %+v, command %s; want the order_paid it came from", d.Event, d.Command.ID)
	}
	if body, _ := json.Marshal(d); len(body) == 0 {
		t.Error("detail does not encode")
	}
}

func testDeadLetterReplayByFilter(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := fakeclock.New(Start)
	db := open(t, clock.Now)
	for _, id := range []string{"a", "b", "c"} {
		acceptFor(t, db, id, "ags", "p1", storegate.KindFulfill)
	}
	acceptFor(t, db, "other", "studio", "p1", storegate.KindFulfill)
	for _, id := range []string{"a", "b", "c", "other"} {
		clock.Advance(time.Minute)
		kill(t, db, id, 1)
	}
	// b died at +2m, c at +3m: the range [+2m, +3m] takes both, the
	// target filter leaves "other" (+4m) out anyway.
	got, err := db.Replay(ctx, store.DeadLetterFilter{Target: "ags", Since: Start.Add(2 * time.Minute), Until: Start.Add(3*time.Minute + time.Second)}, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"b", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("replayed %v, want %v", got, want)
	}
	page, _ := db.DeadLetters(ctx, store.DeadLetterFilter{})
	if got, want := ids(page.DeadLetters), []string{"other", "a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("still dead = %v, want %v", got, want)
	}
	// A limit replays the oldest first.
	got, err = db.Replay(ctx, store.DeadLetterFilter{Limit: 1}, "bob")
	if err != nil || !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("replay with limit 1 = %v (err %v), want the oldest, a", got, err)
	}
	// Nothing matching is not an error.
	if got, err := db.Replay(ctx, store.DeadLetterFilter{Target: "ghost"}, "bob"); err != nil || len(got) != 0 {
		t.Errorf("replay of nothing = %v, %v; want none, no error", got, err)
	}
}

func testDeadLetterDiscard(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := fakeclock.New(Start)
	db := open(t, clock.Now)
	accept(t, db, "a", "live")
	kill(t, db, "a", 1)
	if err := db.Discard(ctx, "a", "player refunded by hand", "carol"); err != nil {
		t.Fatal(err)
	}
	d, err := db.DeadLetter(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if d.State != storegate.StateDiscarded || len(d.Actions) != 1 || d.Actions[0].Reason != "player refunded by hand" || d.Actions[0].Actor != "carol" {
		t.Errorf("after discard: %s, actions %+v", d.State, d.Actions)
	}
	page, _ := db.DeadLetters(ctx, store.DeadLetterFilter{State: storegate.StateDiscarded})
	if got := ids(page.DeadLetters); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("discarded listing = %v, want [a]", got)
	}
	if got, _ := db.Replay(ctx, store.DeadLetterFilter{}, "x"); len(got) != 0 {
		t.Errorf("a replay of dead letters took a discarded one: %v", got)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"discard twice", db.Discard(ctx, "a", "again", "carol"), store.ErrState},
		{"discard a pending command", db.Discard(ctx, "live", "no", "carol"), store.ErrState},
		{"discard an unknown id", db.Discard(ctx, "ghost", "no", "carol"), store.ErrNotFound},
		{"replay a pending command", replayErr(db, "live"), store.ErrState},
		{"replay an unknown id", replayErr(db, "ghost"), store.ErrNotFound},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if _, err := db.DeadLetter(ctx, "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("inspect unknown: err = %v, want ErrNotFound", err)
	}
	// A discarded command can still be replayed when asked for by state.
	if got, err := db.Replay(ctx, store.DeadLetterFilter{State: storegate.StateDiscarded, ID: "a"}, "dave"); err != nil || len(got) != 1 {
		t.Errorf("replay of a discarded command = %v, %v; want it replayed", got, err)
	}

	// A grant the player paid for from their wallet is never given up on:
	// it stays a dead letter, to be replayed.
	paid := fulfill("paid")
	paid.Debit = &storegate.Debit{Currency: "CRYSTALS", Amount: 450}
	if _, _, err := db.Accept(ctx, event("e-paid"), []storegate.Command{paid}, answer204); err != nil {
		t.Fatal(err)
	}
	kill(t, db, "paid", 1)
	if err := db.Discard(ctx, "paid", "no longer sold", "carol"); !errors.Is(err, store.ErrPaidGrant) || !strings.Contains(err.Error(), "450 CRYSTALS") {
		t.Errorf("discard of a paid grant: err = %v, want ErrPaidGrant naming 450 CRYSTALS", err)
	}
	if d, err := db.DeadLetter(ctx, "paid"); err != nil || d.State != storegate.StateDead || len(d.Actions) != 0 {
		t.Errorf("after the refused discard: %+v, %v; want a dead letter with no action", d, err)
	}
	if got, err := db.Replay(ctx, store.DeadLetterFilter{ID: "paid"}, "dave"); err != nil || len(got) != 1 {
		t.Errorf("replay of the paid grant = %v, %v; want it replayed", got, err)
	}
}

func replayErr(db *store.DB, id string) error {
	_, err := db.Replay(context.Background(), store.DeadLetterFilter{ID: id}, "x")
	return err
}
