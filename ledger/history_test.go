package ledger_test

import (
	"context"
	"fmt"
	"testing"

	"storegate/ledger"
)

// Support reads a long history from its end: NewestFirst pages from the
// latest movement back, and says when older ones follow.
func TestHistory_NewestFirst(t *testing.T) {
	l, _ := openLedger(t, ledger.Config{Players: []string{"p1"}})
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		if _, err := l.Adjust(ctx, ledger.Adjustment{PlayerID: "p1", Currency: "GOLD", Amount: int64(i), Reason: "gift",
			Actor: "alice", Key: fmt.Sprint("k", i)}); err != nil {
			t.Fatal(err)
		}
	}
	page, more, err := l.History(ctx, "p1", ledger.HistoryQuery{NewestFirst: true, Page: ledger.Page{Limit: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].Amount != 5 || page[1].Amount != 4 || !more {
		t.Fatalf("newest page = %+v (more %v), want amounts 5, 4 and more", page, more)
	}
	last, more, err := l.History(ctx, "p1", ledger.HistoryQuery{NewestFirst: true, Page: ledger.Page{Limit: 2, Offset: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 1 || last[0].Amount != 1 || more {
		t.Fatalf("last page = %+v (more %v), want amount 1 and no more", last, more)
	}
}
