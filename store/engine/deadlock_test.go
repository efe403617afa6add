package engine

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"storegate/internal/pgtest"
)

// When one write of a batch loses a deadlock (PostgreSQL), rolling back to
// its savepoint leaves the locks of the batch's earlier writes held, and the
// other transaction keeps waiting for them: every later write needing what
// it holds would deadlock again, one deadlock_timeout each (a CI run saw a
// batch take 58 s this way). So the committer commits the writes before the
// loser and runs the rest in a new transaction; the loser is retried.
// The deadlock is simulated (the committer's logic is the same on SQLite).
func TestCommit_DeadlockCommitsTheWritesBeforeIt(t *testing.T) {
	ctx := context.Background()
	obs := &commitLog{}
	db, err := Open(ctx, Config{Migrations: items, DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db"), Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	const n, loser = 5, 2
	var mu sync.Mutex
	ran := make([][]*Tx, n) // the transactions each write ran in, in order
	errs := oneBatch(t, db, n, func(ctx context.Context, i int, tx *Tx) error {
		mu.Lock()
		ran[i] = append(ran[i], tx)
		first := len(ran[i]) == 1
		mu.Unlock()
		if i == loser && first {
			return &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
		}
		return insertItem(ctx, tx, fmt.Sprint(i))
	})

	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	first := ran[0][0]
	for i := range n {
		switch {
		case i < loser && ran[i][0] != first:
			t.Errorf("write %d, before the loser, did not share its transaction", i)
		case i > loser && ran[i][0] == first:
			t.Errorf("write %d, after the loser, ran in the transaction that lost the deadlock", i)
		case i == loser && (len(ran[i]) != 2 || ran[i][1] == first):
			t.Errorf("the loser ran %d times, want once more in a new transaction", len(ran[i]))
		}
	}
	var stored int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM items`).Scan(&stored); err != nil || stored != n {
		t.Fatalf("%d writes stored (%v), want %d", stored, err, n)
	}
	// The holding write, then the batch as two transactions (the writes up
	// to the loser, the rest), then the loser's second run: each reported
	// as the commit it was, for storegate_store_commit_writes.
	// The committer answers a commit's writes before it reports the commit.
	want := []int{1, loser + 1, n - loser - 1, 1}
	for deadline := time.Now().Add(10 * time.Second); len(obs.writes()) < len(want) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := obs.writes(); !slices.Equal(got, want) {
		t.Errorf("the observer heard commits of %v writes, want %v", got, want)
	}
}

// commitLog is a Observer keeping the size of every commit.
type commitLog struct {
	nopObserver
	mu    sync.Mutex
	sizes []int
}

func (c *commitLog) Committed(writes int, _ time.Duration) {
	c.mu.Lock()
	c.sizes = append(c.sizes, writes)
	c.mu.Unlock()
}

func (c *commitLog) writes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sizes)
}

// The same when the write handles its statement's deadlock itself, as the
// dispatcher's in-transaction delivery does (the savepoint is undone and a
// retry recorded; the write succeeds): the batch still commits before the
// writes after it. The statement's deadlock is simulated with note, where a
// PostgreSQL statement error goes.
func TestCommit_DeadlockHandledByTheWriteStillSplitsTheBatch(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Config{Migrations: items, DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n, loser = 4, 1
	ran := make([]*Tx, n)
	errs := oneBatch(t, db, n, func(ctx context.Context, i int, tx *Tx) error {
		ran[i] = tx
		if i == loser {
			lost := tx.Savepoint(ctx, func() error {
				return tx.note(&pgconn.PgError{Code: "40P01", Message: "deadlock detected"})
			})
			if !isDeadlock(lost) {
				return fmt.Errorf("savepoint returned %v", lost)
			}
			return nil // handled: a retry recorded instead
		}
		return insertItem(ctx, tx, fmt.Sprint(i))
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if ran[0] != ran[loser] {
		t.Error("the write before the loser did not share its transaction")
	}
	for i := loser + 1; i < n; i++ {
		if ran[i] == ran[loser] {
			t.Errorf("write %d ran in the transaction whose statement lost a deadlock", i)
		}
	}
	var stored int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM items`).Scan(&stored); err != nil || stored != n-1 {
		t.Fatalf("%d writes stored (%v), want %d", stored, err, n-1)
	}
}

// oneBatch holds the committer while n writes queue, in order, then lets
// them run (as one batch) and returns their errors. fn is write i.
func oneBatch(t *testing.T, db *DB, n int, fn func(ctx context.Context, i int, tx *Tx) error) []error {
	t.Helper()
	ctx := context.Background()
	entered, release := make(chan struct{}), make(chan struct{})
	go db.Write(ctx, func(context.Context, *Tx) error { close(entered); <-release; return nil })
	<-entered
	released := false
	defer func() {
		if !released { // failing: let the committer go, or closing the store waits for ever
			close(release)
		}
	}()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = db.Write(ctx, func(ctx context.Context, tx *Tx) error { return fn(ctx, i, tx) })
		})
		// One at a time, so the batch runs them in this order.
		for deadline := time.Now().Add(10 * time.Second); len(db.jobs) <= i; {
			if time.Now().After(deadline) {
				t.Fatalf("write %d did not queue", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	close(release)
	released = true
	wg.Wait()
	return errs
}

// A real PostgreSQL deadlock inside a write that handles it: the statement
// that loses it is an Exec, or a SELECT ... FOR UPDATE whose second row is
// the one it waits for (the error then comes from the rows, not the query:
// from Err after reading them all, or from Close when the caller stops
// after the first). Either way the transaction must note it and the batch commit
// before the write after it.
func TestPostgres_StatementDeadlockSplitsTheBatch(t *testing.T) {
	for _, stmt := range []string{"exec", "rows", "close"} {
		t.Run(stmt, func(t *testing.T) {
			ctx := context.Background()
			dsn := pgtest.DSN(t)
			db, err := Open(ctx, Config{Migrations: items, DSN: dsn, Writers: 1}) // one committer: one batch
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, id := range []string{"1", "2"} {
				if err := db.Write(ctx, func(ctx context.Context, tx *Tx) error { return insertItem(ctx, tx, id) }); err != nil {
					t.Fatal(err)
				}
			}
			// Another session holds row 2 and, once the write holds row 1,
			// asks for it: a cycle, which the write loses (its
			// deadlock_timeout is the shorter).
			other, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			// The write makes itself the loser with SET LOCAL
			// deadlock_timeout, which only a superuser may set (.ci/run's
			// postgres user is one).
			var super bool
			if err := other.QueryRowContext(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
				t.Fatal(err)
			}
			if !super {
				t.Skip("the test's PostgreSQL user is not a superuser: it cannot set deadlock_timeout")
			}
			otx, err := other.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer otx.Rollback()
			if _, err := otx.ExecContext(ctx, `UPDATE items SET tag = 'other' WHERE id = '2'`); err != nil {
				t.Fatal(err)
			}
			holdsRow1 := make(chan struct{})
			otherDone := make(chan error, 1)
			go func() {
				<-holdsRow1
				_, err := otx.ExecContext(ctx, `UPDATE items SET tag = 'other' WHERE id = '1'`)
				if err == nil {
					err = otx.Commit()
				}
				otherDone <- err
			}()

			const loser = 1
			ran := make([]*Tx, 3)
			var lost error
			errs := oneBatch(t, db, 3, func(ctx context.Context, i int, tx *Tx) error {
				ran[i] = tx
				if i != loser {
					return insertItem(ctx, tx, fmt.Sprint("w", i))
				}
				lost = tx.Savepoint(ctx, func() error {
					if _, err := tx.Exec(ctx, `SET LOCAL deadlock_timeout = '50ms'`); err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, `UPDATE items SET tag = 'batch' WHERE id = '1'`); err != nil {
						return err
					}
					close(holdsRow1)
					time.Sleep(100 * time.Millisecond) // let the other session queue for row 1 first
					if stmt == "exec" {
						_, err := tx.Exec(ctx, `UPDATE items SET tag = 'batch' WHERE id = '2'`)
						return err
					}
					rows, err := tx.Query(ctx, `SELECT id FROM items WHERE id IN ('1', '2') ORDER BY id FOR UPDATE`)
					if err != nil {
						return err
					}
					if stmt == "close" { // stops after the first row: pgx reads the rest in Close
						rows.Next()
						return rows.Close()
					}
					defer rows.Close()
					for rows.Next() {
					}
					return rows.Err()
				})
				return nil // handled, as an in-transaction delivery records a retry
			})
			if err := <-otherDone; err != nil {
				t.Fatalf("the other session: %v", err)
			}
			if !isDeadlock(lost) {
				t.Fatalf("the write's statement ended with %v, want a deadlock", lost)
			}
			for i, err := range errs {
				if err != nil {
					t.Errorf("write %d: %v", i, err)
				}
			}
			if ran[0] != ran[loser] {
				t.Error("the write before the loser did not share its transaction")
			}
			if ran[2] == ran[loser] {
				t.Error("the write after the loser ran in the transaction whose statement lost a deadlock")
			}
		})
	}
}
