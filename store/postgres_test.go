package store_test

import (
	"context"
	"testing"
	"time"

	"storegate/internal/pgtest"
	"storegate/store"
	"storegate/store/storetest"
)

func openPostgres(t testing.TB, now func() time.Time) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{DSN: pgtest.DSN(t), Now: now})
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
