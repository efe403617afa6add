package ledger

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"storegate/store"
	"storegate/store/engine"
)

// ledger_transactions_reverses leaves fulfillments out (most transactions),
// so SQLite uses it only when the query repeats its condition: without it,
// every revoke would read every transaction ever applied.
func TestSQLite_RemainingUsesTheReversesIndex(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, engine.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db"), Migrations: []engine.Migrations{Migrations()}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(ctx, "EXPLAIN QUERY PLAN "+remainingSQL, "t1", "t1", "p1", "CRYSTALS", "Xsolla")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if !strings.Contains(strings.Join(plan, "\n"), "INDEX ledger_transactions_reverses") {
		t.Errorf("remaining does not use ledger_transactions_reverses:\n%s", strings.Join(plan, "\n"))
	}
}
