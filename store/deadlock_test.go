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

	// Hold the committer so the writes below queue up and share one batch.
	entered, release := make(chan struct{}), make(chan struct{})
	go db.Write(ctx, func(context.Context, *Tx) error { close(entered); <-release; return nil })
	<-entered

	const n, loser = 5, 2
	var mu sync.Mutex
	ran := make([][]*Tx, n) // the transactions each write ran in, in order
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = db.Write(ctx, func(ctx context.Context, tx *Tx) error {
				mu.Lock()
				ran[i] = append(ran[i], tx)
				first := len(ran[i]) == 1
				mu.Unlock()
				if i == loser && first {
					return &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
				}
				_, err := tx.Exec(ctx, `INSERT INTO links (source, order_id, transaction_id, answer, created_at) VALUES ('s', ?, 't', x'', 0)`, fmt.Sprint(i))
				return err
			})
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
