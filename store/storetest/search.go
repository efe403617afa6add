package storetest

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"storegate"
	"storegate/internal/fakeclock"
	"storegate/store"
)

// The console's search: commands by transaction id (a revoke leads to the
// order it reverses), whether a player was ever seen, and the sources that
// sent anything.
func testSearchLookups(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	grant := fulfill("xsolla.xs.order.1001")
	grant.OrderRef = "order 1001"
	ev := event("order_paid:1001")
	ev.Source = "xs"
	if _, _, err := db.Accept(ctx, ev, []storegate.Command{grant}, answer204); err != nil {
		t.Fatal(err)
	}
	revoke := storegate.Command{ID: "xsolla.xs.order.1001.revoke", Kind: storegate.KindRevoke, Source: "xs", Target: "ledger",
		PlayerID: "p1", Reverses: "xsolla.xs.order.1001", OrderRef: "order 1001"}
	ev = event("refund:1001")
	ev.Source = "xs"
	if _, _, err := db.Accept(ctx, ev, []storegate.Command{revoke}, answer204); err != nil {
		t.Fatal(err)
	}
	ev = event("other")
	ev.Source, ev.PlayerID = "bank", "p2"
	if _, _, err := db.Accept(ctx, ev, nil, answer204); err != nil {
		t.Fatal(err)
	}

	found, err := db.Commands(ctx, []string{"xsolla.xs.order.1001.revoke", "no-such-id"})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Match{{PlayerID: "p1", Command: "xsolla.xs.order.1001.revoke", Order: "xsolla.xs.order.1001", Source: "xs",
		OrderRef: "order 1001", Kind: storegate.KindRevoke, State: storegate.StatePending}}
	if !reflect.DeepEqual(found, want) {
		t.Errorf("Commands = %+v, want %+v", found, want)
	}
	if none, err := db.Commands(ctx, nil); err != nil || len(none) != 0 {
		t.Errorf("Commands(none) = %v, %v; want nothing", none, err)
	}
	for player, want := range map[string]bool{"p1": true, "p2": true, "p3": false} {
		if seen, err := db.PlayerSeen(ctx, player); err != nil || seen != want {
			t.Errorf("PlayerSeen(%s) = %v, %v; want %v", player, seen, err, want)
		}
	}
	sources, err := db.Sources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sources, []string{"bank", "xs"}) {
		t.Errorf("Sources = %v, want [bank xs]", sources)
	}
}

// The health page's backlogs: per target, the pending and dead commands,
// the oldest pending and the latest error; per source, its pending ones.
func testBacklogs(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := fakeclock.New(Start)
	db := open(t, clock.Now)
	acceptFor(t, db, "a1", "ags", "p1", storegate.KindFulfill)
	clock.Advance(time.Minute)
	acceptFor(t, db, "a2", "ags", "p2", storegate.KindFulfill)
	acceptFor(t, db, "l1", "ledger", "p1", storegate.KindFulfill)
	kill(t, db, "a2", 1)
	targets, err := db.TargetBacklogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Backlog{
		{Name: "ags", Pending: 1, Dead: 1, OldestPending: Start, LastError: "dead http=404 code=30343: AGS answered 404: no such item", LastErrorAt: Start.Add(time.Minute)},
		// kill hands the other commands back with a wait, which is no error of the target's.
		{Name: "ledger", Pending: 1, OldestPending: Start.Add(time.Minute)},
	}
	if !reflect.DeepEqual(targets, want) {
		t.Errorf("TargetBacklogs =\n%+v\nwant\n%+v", targets, want)
	}
	sources, err := db.SourceBacklogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) != 1 || sources[0].Name != "src" || sources[0].Pending != 2 || !sources[0].OldestPending.Equal(Start) {
		t.Errorf("SourceBacklogs = %+v, want src with 2 pending since the start", sources)
	}
}
