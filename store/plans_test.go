package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storegate/store/engine"
)

// queryPlan is SQLite's plan for query, one line per step.
func queryPlan(t *testing.T, db *DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.Query(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	return strings.Join(steps, "\n")
}

// outbox_state leaves done commands out (most of the table), so SQLite
// uses it only for queries that repeat its condition. Each query that must
// use it: without the index, a claim or a /metrics scrape reads every
// command ever queued.
func TestSQLite_QueryPlans(t *testing.T) {
	db, err := Open(context.Background(), engine.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	listing, listArgs, err := DeadLetterFilter{Target: "ledger"}.where()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMicro()
	for _, c := range []struct {
		name, query, index string
		args               []any
	}{
		{"claim", claimSQL(engine.SQLite), "outbox_target_due", []any{"owner", now, "ledger", now, now, 16}},
		{"depth", depthSQL, "outbox_state", []any{"pending"}},
		{"dead letters", deadLettersSQL(listing), "outbox_state", append(listArgs, 100)},
	} {
		plan := queryPlan(t, db, c.query, c.args...)
		if !strings.Contains(plan, "USING INDEX "+c.index) && !strings.Contains(plan, "USING COVERING INDEX "+c.index) {
			t.Errorf("%s does not use %s:\n%s", c.name, c.index, plan)
		}
	}
}
