package engine

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Ping reports whether the store can take writes now, for /readyz. It
// fails while a failed flush has stopped the store, for Config.FaultFor
// after a write could not commit, and while the database answers no read.
//
// Readiness rests on what real writes met, not on a probe write of its
// own: on a full disk a one-row update still fits in the space of the log
// SQLite reuses while an order's rows do not, so a probe would say ready
// while every order fails. Without writes a fault ages out, and the next
// write tells again.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.syncFailed(); err != nil {
		return err
	}
	if err := db.faults.recent(db.now()); err != nil {
		return err
	}
	var one int
	return db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// faults holds the last write the database could not commit.
type faults struct {
	hold time.Duration
	last atomic.Pointer[fault]
}

type fault struct {
	at  time.Time
	err error
}

// fault records err, a write the database could not commit, for Ping.
func (db *DB) fault(err error) { db.faults.last.Store(&fault{at: db.now(), err: err}) }

// recent is the last fault if it is less than hold old at now.
func (f *faults) recent(now time.Time) error {
	if last := f.last.Load(); last != nil && now.Sub(last.at) < f.hold {
		return last.err
	}
	return nil
}

// storageFault reports whether a write's error says the database cannot
// take writes now, rather than refusing this one: SQLite's read-only (8),
// I/O error (10), disk full (13) and cannot open (14); PostgreSQL's lost
// connections (class 08), insufficient resources such as a full disk
// (class 53), shutdowns (57P) and a read-only transaction (25006: a
// replica, after a failover).
func storageFault(err error) bool {
	switch sqliteCode(err) {
	case 8, 10, 13, 14:
		return true
	}
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	return strings.HasPrefix(pg.Code, "08") || strings.HasPrefix(pg.Code, "53") || strings.HasPrefix(pg.Code, "57P") || pg.Code == "25006"
}
