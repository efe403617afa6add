// Package store keeps storegate's durable state: the inbox of accepted
// events, the outbox of commands owed to targets, transaction links, dead
// letters, orders, partner orders and carts, on SQLite (embedded, the
// default) or PostgreSQL (several replicas). Its writes go through the
// commit engine (store/engine), which it opens with the schemas of the
// tables other packages keep beside its own (the embedded ledger's).
package store

import (
	"context"
	"sync/atomic"
	"time"

	"storegate"
	"storegate/store/engine"
)

// Observer is an engine.Observer that also hears of the commands applied as
// they were accepted (see ApplyOnAccept). Calls come from the committer:
// they must not block.
type Observer interface {
	engine.Observer
	// Delivered reports a command applied as it was accepted, once
	// committed.
	Delivered(target string, v storegate.Verdict, d time.Duration)
}

// DB is storegate's store: its tables over the commit engine, whose
// writes, reads and readiness it offers as its own. It is safe for
// concurrent use.
type DB struct {
	*engine.DB
	now func() time.Time
	obs Observer // nil unless the engine's observer is also an Observer
	// applier, when set, applies its target's commands as they are
	// accepted (SQLite).
	applier atomic.Pointer[applier]
	// accepts is the inbox's bulk kind of write (see Accept).
	accepts *engine.Bulk[*acceptReq]
	// payHold, when set, holds for its target's commands in a partner
	// payment's transaction (HoldOnPay).
	payHold atomic.Pointer[holder]
}

// Open opens the database with cfg, applies the store's migrations and then
// cfg.Migrations, and starts the committers. cfg.Observer, when it is also
// an Observer, hears of the commands applied as accepted too.
func Open(ctx context.Context, cfg engine.Config) (*DB, error) {
	cfg.Migrations = append([]engine.Migrations{own()}, cfg.Migrations...)
	e, err := engine.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	db := &DB{DB: e, now: e.Now}
	db.obs, _ = cfg.Observer.(Observer)
	db.accepts = engine.NewBulk(db.acceptMany)
	return db, nil
}
