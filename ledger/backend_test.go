package ledger_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"storegate/internal/fakeclock"
	"storegate/ledger"
	"storegate/store"
)

// backend opens a fresh store of one dialect.
type backend struct {
	name string
	open func(t testing.TB, clock *fakeclock.Clock) *store.DB
}

// backends is SQLite always, and PostgreSQL when STOREGATE_TEST_POSTGRES_DSN
// is set (each test in a schema of its own, dropped afterwards).
func backends() []backend {
	out := []backend{{"sqlite", func(t testing.TB, clock *fakeclock.Clock) *store.DB {
		return openStore(t, "sqlite:"+t.TempDir()+"/s.db", clock)
	}}}
	if dsn := os.Getenv("STOREGATE_TEST_POSTGRES_DSN"); dsn != "" {
		out = append(out, backend{"postgres", func(t testing.TB, clock *fakeclock.Clock) *store.DB {
			return openStore(t, postgresSchema(t, dsn), clock)
		}})
	}
	return out
}

func openStore(t testing.TB, dsn string, clock *fakeclock.Clock) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{DSN: dsn, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// postgresSchema creates a schema for one test and returns a DSN using it.
func postgresSchema(t testing.TB, dsn string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "sg_ledger_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}

func newLedger(t testing.TB, be backend, cfg ledger.Config) (*ledger.Ledger, *store.DB, *fakeclock.Clock) {
	t.Helper()
	clock := fakeclock.New(start)
	db := be.open(t, clock)
	l, err := ledger.New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, db, clock
}
