package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// A connection left inside a transaction (a ROLLBACK that failed) cannot
// begin the next one: the committer replaces it instead of failing every
// later write, and an in-memory database outlives the replacement. The
// stuck state is made by hand on the writer's connection.
func TestCommit_ReplacesAConnectionStuckInATransaction(t *testing.T) {
	for name, dsn := range map[string]string{"file": "sqlite:" + filepath.Join(t.TempDir(), "s.db"), "memory": "sqlite::memory:"} {
		t.Run(name, func(t *testing.T) { replacesAStuckConnection(t, dsn) })
	}
}

func replacesAStuckConnection(t *testing.T, dsn string) {
	ctx := context.Background()
	obs := &reconnectCounter{}
	db, err := Open(ctx, Config{Migrations: items, DSN: dsn, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	write := func(id string) error {
		return db.Write(ctx, func(ctx context.Context, tx *Tx) error { return insertItem(ctx, tx, id) })
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
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM items`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d rows stored (%v), want 3", n, err)
	}
	if got := obs.n.Load(); got != 1 {
		t.Errorf("the observer heard of %d reconnections, want 1", got)
	}
}

// reconnectCounter is a Observer counting replaced connections.
type reconnectCounter struct {
	nopObserver
	n atomic.Int64
}

func (r *reconnectCounter) Reconnected() { r.n.Add(1) }

// SQLite's busy and locked results (another process holds the write lock)
// are not a broken connection: replacing it would only wait again.
func TestIsBusy(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{codedError(5), true},        // SQLITE_BUSY
		{codedError(6), true},        // SQLITE_LOCKED
		{codedError(5 | 2<<8), true}, // SQLITE_BUSY_SNAPSHOT, an extended code
		{codedError(1), false},       // SQLITE_ERROR: cannot start a transaction within a transaction
		{errors.New("driver: bad connection"), false},
	} {
		if got := isBusy(fmt.Errorf("begin: %w", c.err)); got != c.want {
			t.Errorf("isBusy(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

type codedError int

func (c codedError) Error() string { return fmt.Sprintf("sqlite result %d", int(c)) }
func (c codedError) Code() int     { return int(c) }
