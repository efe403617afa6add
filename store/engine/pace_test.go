package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// On a SQLite file, a commit starts no sooner than CommitPace after the
// last one started: the writes that arrive meanwhile share it. A write to
// a store that has not committed for that long does not wait.
func TestCommitPace_WritesThatArriveWithinThePaceShareOneCommit(t *testing.T) {
	const pace = time.Second
	ctx := context.Background()
	obs := &commitLog{}
	db, err := Open(ctx, Config{Migrations: items, DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db"), CommitPace: pace, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	write := func(id string) error {
		return db.Write(ctx, func(ctx context.Context, tx *Tx) error { return insertItem(ctx, tx, id) })
	}

	start := time.Now()
	if err := write("alone"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= pace/2 {
		t.Errorf("a write to an idle store took %v: it waited for the pace (%v)", took, pace)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Go(func() { errs <- write(fmt.Sprint("burst", i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < pace {
		t.Errorf("the burst was committed %v after the first commit started, want at least the pace (%v)", took, pace)
	}
	if got := obs.writes(); !slices.Equal(got, []int{1, 10}) {
		t.Errorf("commits of %v writes, want [1 10]: the burst in one commit", got)
	}
	time.Sleep(pace)
	again := time.Now()
	if err := write("quiet again"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(again); took >= pace/2 {
		t.Errorf("a write a pace after the last commit took %v: it waited for the pace (%v)", took, pace)
	}
	if got := obs.writes(); !slices.Equal(got, []int{1, 10, 1}) {
		t.Errorf("commits of %v writes, want [1 10 1]", got)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM items`).Scan(&n); err != nil || n != 12 {
		t.Errorf("%d rows stored (%v), want 12", n, err)
	}
}
