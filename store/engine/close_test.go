package engine

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// A write queued after the committer's last look at its queue (a submit
// racing with Close) is answered ErrClosed instead of waiting forever.
func TestClose_AnswersAJobQueuedTooLate(t *testing.T) {
	db, err := Open(context.Background(), Config{Migrations: items, DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	j := &job{ctx: context.Background(), fn: func(context.Context, *Tx) error { return nil }, done: make(chan error, 1)}
	db.jobs <- j // what a submit that passed the closed check before Close does
	answered := make(chan error, 1)
	go func() { answered <- db.await(context.Background(), j) }()
	select {
	case err := <-answered:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("late job answered %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a job queued after Close was never answered")
	}
}
