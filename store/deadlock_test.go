package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
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
	db, err := Open(ctx, Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db")})
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
		return insertLink(ctx, tx, fmt.Sprint(i))
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
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM links`).Scan(&stored); err != nil || stored != n {
		t.Fatalf("%d writes stored (%v), want %d", stored, err, n)
	}
}

// The same when the write handles its statement's deadlock itself, as the
// dispatcher's in-transaction delivery does (the savepoint is undone and a
// retry recorded; the write succeeds): the batch still commits before the
// writes after it. The statement's deadlock is simulated with note, where a
// PostgreSQL statement error goes.
func TestCommit_DeadlockHandledByTheWriteStillSplitsTheBatch(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db")})
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
		return insertLink(ctx, tx, fmt.Sprint(i))
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
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM links`).Scan(&stored); err != nil || stored != n-1 {
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
	wg.Wait()
	return errs
}

func insertLink(ctx context.Context, tx *Tx, id string) error {
	_, err := tx.Exec(ctx, `INSERT INTO links (source, order_id, transaction_id, answer, created_at) VALUES ('s', ?, 't', x'', 0)`, id)
	return err
}
