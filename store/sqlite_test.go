package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storegate/store"
	"storegate/store/engine"
	"storegate/store/storetest"
)

// OpenSQLite opens a fresh file-backed SQLite store in a temporary folder:
// a file, not memory, so WAL and durability settings are the real ones.
func openSQLite(t testing.TB, now func() time.Time) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), engine.Config{
		DSN: "sqlite:" + filepath.Join(t.TempDir(), "storegate.db"), Now: now,
		Migrations: []engine.Migrations{effects}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, openSQLite)
}

func TestSQLite_ReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "data", "storegate.db")
	db, err := store.Open(ctx, engine.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Link(ctx, "s", "1", "t", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = store.Open(ctx, engine.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Link(ctx, "s", "1", "other", []byte(`{"other":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "{}" {
		t.Fatalf("after reopen the link answered %s, want the stored {}", got)
	}
	versions, err := db.Migrations(ctx)
	if err != nil || len(versions) == 0 {
		t.Fatalf("migrations = %v (err %v), want the applied versions", versions, err)
	}
}

func TestOpen_RejectsUnknownDSN(t *testing.T) {
	_, err := store.Open(context.Background(), engine.Config{DSN: "mysql://root:hunter2@localhost/x"})
	if err == nil {
		t.Fatal("opened an unsupported DSN")
	}
	if got := err.Error(); strings.Contains(got, "hunter2") {
		t.Fatalf("error leaks the DSN's password: %s", got)
	}
}
