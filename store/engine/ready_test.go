package engine

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storegate/internal/fakeclock"
)

// limitPages caps the writer's database at its present size (a full disk:
// no write may add a page), or lifts the cap.
func limitPages(t *testing.T, db *DB, full bool) {
	t.Helper()
	done := make(chan error, 1)
	db.maint <- func(conn *sql.Conn) {
		ctx := context.Background()
		limit := 1 << 30
		if full {
			if err := conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&limit); err != nil {
				done <- err
				return
			}
		}
		_, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", limit))
		done <- err
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Ping, behind /readyz, fails while writes cannot commit for lack of space,
// and FaultFor after the last that could not: a small write that still fits
// does not make the store ready, since orders' writes do not fit.
func TestPing_FailsWhileWritesCannotCommit(t *testing.T) {
	ctx := context.Background()
	clock := fakeclock.New(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	db, err := Open(ctx, Config{Migrations: items, DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db"), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	big := func(id string) error {
		return db.Write(ctx, func(ctx context.Context, tx *Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO items (id, tag, body) VALUES (?, 't', ?)`,
				id, []byte(strings.Repeat("x", 64<<10)))
			return err
		})
	}
	// The same size: SQLite overwrites the row where it stands.
	small := func() error {
		return db.Write(ctx, func(ctx context.Context, tx *Tx) error {
			_, err := tx.Exec(ctx, `UPDATE items SET tag = 'u' WHERE id = 'a'`)
			return err
		})
	}
	if err := big("a"); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping = %v on a healthy store", err)
	}

	limitPages(t, db, true)
	if err := big("b"); sqliteCode(err) != 13 {
		t.Fatalf("write on a full disk: %v, want SQLITE_FULL", err)
	}
	if err := small(); err != nil {
		t.Fatalf("a small write on the full disk: %v, want it to fit", err)
	}
	if err := db.Ping(ctx); err == nil {
		t.Fatal("Ping answers ready right after a write could not commit")
	}
	clock.Advance(10*time.Second - time.Millisecond)
	if err := db.Ping(ctx); err == nil {
		t.Fatal("Ping answers ready before FaultFor has passed")
	}
	clock.Advance(time.Millisecond)
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping = %v once FaultFor passed without a failed write", err)
	}
	if err := big("c"); err == nil || db.Ping(ctx) == nil {
		t.Fatalf("the next write on the full disk: %v; Ping must fail again", err)
	}

	limitPages(t, db, false)
	if err := big("d"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping = %v once writes commit again", err)
	}
}
