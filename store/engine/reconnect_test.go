package engine

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"

	"storegate/internal/pgtest"
)

// When PostgreSQL drops the committers' connections (a restart, a failover,
// an administrator), the next writes must get new ones: a committer that
// kept its dead connection failed every write after it, for good, while
// /readyz (a read) still answered ready.
func TestPostgres_CommittersReconnect(t *testing.T) {
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	app := fmt.Sprintf("storegate_reconnect_%d", rand.Uint64())
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	ctx := context.Background()
	obs := &reconnectCounter{}
	db, err := Open(ctx, Config{Migrations: items, DSN: u.String(), Writers: 2, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	write := func(id string) error {
		return db.Write(ctx, func(ctx context.Context, tx *Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO items (id) VALUES (?)`, id)
			return err
		})
	}
	for i := range 4 {
		if err := write(fmt.Sprint("before-", i)); err != nil {
			t.Fatal(err)
		}
	}

	admin, err := sql.Open("pgx", os.Getenv(pgtest.EnvDSN))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var killed int
	if err := admin.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) k`, app).Scan(&killed); err != nil || killed == 0 {
		t.Fatalf("terminated %d connections (%v), want the store's", killed, err)
	}

	var failed []error
	for i := range 20 {
		if err := write(fmt.Sprint("after-", i)); err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		t.Fatalf("%d of 20 writes failed after the connections were dropped, first: %v", len(failed), failed[0])
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM items WHERE id LIKE 'after-%'`).Scan(&n); err != nil || n != 20 {
		t.Fatalf("%d writes stored after the drop (%v), want 20", n, err)
	}
	if obs.n.Load() == 0 {
		t.Error("no reconnection reported to the observer")
	}
}
