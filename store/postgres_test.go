package store_test

import (
	"context"
	"testing"
	"time"

	"storegate"

	"storegate/internal/pgtest"
	"storegate/store"
	"storegate/store/engine"
	"storegate/store/storetest"
)

func openPostgres(t testing.TB, now func() time.Time) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), engine.Config{DSN: pgtest.DSN(t), Now: now, Migrations: []engine.Migrations{effects}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The same conformance suite as SQLite, against PostgreSQL.
func TestPostgres(t *testing.T) {
	storetest.Run(t, openPostgres)
}

// PostgreSQL's committers cannot see each other's uncommitted commands, so
// a player's order could not be kept: every command goes through the outbox.
func TestPostgres_NoDeliveryOnAccept(t *testing.T) {
	db := openPostgres(t, func() time.Time { return storetest.Start })
	f := &fakeInline{}
	db.ApplyOnAccept("ledger", f)
	acceptOne(t, db, "o1", grant("t1", "p1"))
	if n := f.offers("t1"); n != 0 {
		t.Fatalf("t1 offered %d times on PostgreSQL", n)
	}
	wantCommand(t, db, "t1", storegate.StatePending, false)
}
