package ledger_test

import (
	"context"
	"os"
	"testing"

	"storegate/internal/fakeclock"
	"storegate/internal/pgtest"
	"storegate/ledger"
	"storegate/store"
	"storegate/store/engine"
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
	if os.Getenv(pgtest.EnvDSN) != "" {
		out = append(out, backend{"postgres", func(t testing.TB, clock *fakeclock.Clock) *store.DB {
			return openStore(t, pgtest.DSN(t), clock)
		}})
	}
	return out
}

func openStore(t testing.TB, dsn string, clock *fakeclock.Clock) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), engine.Config{DSN: dsn, Now: clock.Now, Migrations: []engine.Migrations{ledger.Migrations()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
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
