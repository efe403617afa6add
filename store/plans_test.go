package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storegate"
	"storegate/internal/pgtest"
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

// A PostgreSQL claim reads the due commands in (next_at, seq) order from
// outbox_target_due_seq and stops at its limit. Commands queued together
// share a next_at; with an index ordered by next_at alone, PostgreSQL sorted
// all of them for every claim, which made draining a backlog of 50,000
// several times slower.
func TestPostgres_ClaimReadsInIndexOrder(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, engine.Config{DSN: pgtest.DSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var cs []storegate.Command
	for i := range 3000 {
		cs = append(cs, storegate.Command{ID: fmt.Sprintf("c%d", i), Kind: storegate.KindFulfill, Target: "studio", PlayerID: fmt.Sprintf("p%d", i)})
	}
	ev := storegate.Event{Source: "src", Type: "order_paid", Key: "k", PlayerID: "p0", Body: []byte(`{}`)}
	if _, _, err := db.Accept(ctx, ev, cs, storegate.Answer{Status: 204}); err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		_, err := tx.Exec(ctx, "ANALYZE outbox")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Hour).UnixMicro()
	rows, err := db.Query(ctx, "EXPLAIN "+claimSQL(engine.Postgres), "owner", now, "studio", now, now, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	p := strings.Join(plan, "\n")
	if !strings.Contains(p, "outbox_target_due_seq") || strings.Contains(p, "Sort") {
		t.Errorf("the claim does not read outbox_target_due_seq in order:\n%s", p)
	}
}
