package store

import (
	"context"
	"errors"
	"fmt"
)

// ErrClosed is returned for writes submitted after Close.
var ErrClosed = errors.New("store: closed")

type job struct {
	ctx  context.Context
	fn   func(context.Context, *Tx) error
	done chan error
}

// Write runs fn in a transaction and returns after it is committed. Writes
// submitted concurrently share one transaction and one commit (group commit);
// each runs under its own savepoint, so one failing write does not undo the
// others. fn must keep no state outside the transaction that it relies on
// when Write returns an error: a failed commit undoes every write in it.
func (db *DB) Write(ctx context.Context, fn func(context.Context, *Tx) error) error {
	j := &job{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case <-db.stop:
		return ErrClosed
	default:
	}
	select {
	case db.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-db.stop:
		return ErrClosed
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		// The write may still commit; callers treat this as "unknown" and
		// the sender's retry finds the stored result.
		return ctx.Err()
	}
}

func (db *DB) commitLoop() {
	defer db.wg.Done()
	batch := make([]*job, 0, db.batch)
	for {
		batch = batch[:0]
		select {
		case j := <-db.jobs:
			batch = append(batch, j)
		case <-db.stop:
			// Finish what was queued before Close.
			for {
				select {
				case j := <-db.jobs:
					db.commit([]*job{j})
				default:
					return
				}
			}
		}
	drain:
		for len(batch) < db.batch {
			select {
			case j := <-db.jobs:
				batch = append(batch, j)
			default:
				break drain
			}
		}
		db.commit(batch)
	}
}

func (db *DB) commit(batch []*job) {
	live := batch[:0:0]
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.done <- err
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	ctx := context.Background() // a batch outlives any one caller's context
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		for _, j := range live {
			j.done <- fmt.Errorf("store: begin: %w", err)
		}
		return
	}
	tx := &Tx{tx: sqlTx, db: db, now: db.now()}
	results := make([]error, len(live))
	single := len(live) == 1
	for i, j := range live {
		if single {
			results[i] = runJob(ctx, j, tx)
			continue
		}
		if _, err := sqlTx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
			results[i] = fmt.Errorf("store: savepoint: %w", err)
			continue
		}
		results[i] = runJob(ctx, j, tx)
		if results[i] != nil {
			if _, err := sqlTx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT w"); err != nil {
				// The transaction is in an unknown state: fail the batch.
				sqlTx.Rollback()
				for _, j := range live {
					j.done <- fmt.Errorf("store: rollback to savepoint: %w", err)
				}
				return
			}
		}
		if _, err := sqlTx.ExecContext(ctx, "RELEASE SAVEPOINT w"); err != nil {
			sqlTx.Rollback()
			for _, j := range live {
				j.done <- fmt.Errorf("store: release savepoint: %w", err)
			}
			return
		}
	}
	if single && results[0] != nil {
		sqlTx.Rollback()
		live[0].done <- results[0]
		return
	}
	if err := sqlTx.Commit(); err != nil {
		for _, j := range live {
			j.done <- fmt.Errorf("store: commit: %w", err)
		}
		return
	}
	for i, j := range live {
		j.done <- results[i]
	}
}

// runJob runs one write, turning a panic into an error so one bad write
// cannot take down the committer and every request waiting on it. It gets the
// batch's context, not its caller's: cancelling a statement would abort the
// whole shared transaction in both SQLite and PostgreSQL.
func runJob(ctx context.Context, j *job, tx *Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: write panicked: %v", r)
		}
	}()
	return j.fn(ctx, tx)
}
