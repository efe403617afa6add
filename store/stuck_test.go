package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// A connection left inside a transaction (a ROLLBACK that failed) cannot
// begin the next one: the committer replaces it instead of failing every
// later write. The stuck state is made by hand on the writer's connection.
func TestCommit_ReplacesAConnectionStuckInATransaction(t *testing.T) {
	ctx := context.Background()
	obs := &reconnectCounter{}
	db, err := Open(ctx, Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db"), Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	write := func(id string) error {
		return db.Write(ctx, func(ctx context.Context, tx *Tx) error { return insertLink(ctx, tx, id) })
	}
	if err := write("before"); err != nil {
		t.Fatal(err)
	}
	stuck := make(chan error, 1)
	db.maint <- func(conn *sql.Conn) {
		_, err := conn.ExecContext(ctx, "BEGIN")
		stuck <- err
	}
	if err := <-stuck; err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"after-1", "after-2"} {
		if err := write(id); err != nil {
			t.Fatalf("write %s: %v", id, err)
		}
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM links`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d links stored (%v), want 3", n, err)
	}
	if got := obs.n.Load(); got != 1 {
		t.Errorf("the observer heard of %d reconnections, want 1", got)
	}
}

// reconnectCounter is a store.Observer counting replaced connections.
type reconnectCounter struct{ n atomic.Int64 }

func (*reconnectCounter) Committed(int, time.Duration)   {}
func (*reconnectCounter) WriterCheckpoint(time.Duration) {}
func (r *reconnectCounter) Reconnected()                 { r.n.Add(1) }
