package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"storegate"
)

// flushHook replaces the log flush for one test.
func flushHook(t *testing.T, fn func(*os.File) error) {
	t.Helper()
	old := fdatasync
	fdatasync = fn
	t.Cleanup(func() { fdatasync = old })
}

func openFile(t *testing.T, cfg Config) *DB {
	t.Helper()
	cfg.DSN = "sqlite:" + filepath.Join(t.TempDir(), "s.db")
	db, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func link(db *DB, id string) error {
	_, err := db.Link(context.Background(), "s", id, "t"+id, []byte("{}"))
	return err
}

// No caller hears of a commit before the log holding it is flushed.
func TestSQLite_AnswersOnlyAfterTheFlush(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var flushed []string // the log's path, per flush
	flushHook(t, func(f *os.File) error {
		<-release
		mu.Lock()
		flushed = append(flushed, f.Name())
		mu.Unlock()
		return nil
	})
	db := openFile(t, Config{})
	done := make(chan error, 1)
	go func() { done <- link(db, "1") }()
	select {
	case err := <-done:
		t.Fatalf("the write was answered (err %v) before the log was flushed", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(flushed) == 0 || !strings.HasSuffix(flushed[0], "s.db-wal") {
		t.Fatalf("flushed %v, want the write-ahead log", flushed)
	}
}

// A failed flush fails its writes and every later one, and readiness: the
// kernel may have dropped what it could not write.
func TestSQLite_FailedFlushIsFinal(t *testing.T) {
	fail := errors.New("EIO")
	var failing sync.Mutex
	broken := false
	flushHook(t, func(*os.File) error {
		failing.Lock()
		defer failing.Unlock()
		if broken {
			return fail
		}
		return nil
	})
	db := openFile(t, Config{})
	ctx := context.Background()
	if err := link(db, "before"); err != nil {
		t.Fatal(err)
	}
	failing.Lock()
	broken = true
	failing.Unlock()
	if err := link(db, "during"); !errors.Is(err, fail) {
		t.Fatalf("write during the failing flush: %v, want %v", err, fail)
	}
	failing.Lock()
	broken = false // the disk "recovers": too late, nothing is trusted
	failing.Unlock()
	if err := link(db, "after"); !errors.Is(err, fail) {
		t.Fatalf("write after a failed flush: %v, want %v", err, fail)
	}
	_, _, err := db.Accept(ctx, storegate.Event{Source: "s", Type: "t", Key: "k", Body: []byte("{}")}, nil, storegate.Answer{Status: 204})
	if !errors.Is(err, fail) {
		t.Fatalf("accept after a failed flush: %v, want %v", err, fail)
	}
	if err := db.Ping(ctx); !errors.Is(err, fail) {
		t.Fatalf("ping after a failed flush: %v, want %v", err, fail)
	}
}

// Under continuous writes the write-ahead log starts over instead of
// growing: before the writer's checkpoint it grew by every page written.
func TestSQLite_WALStaysBounded(t *testing.T) {
	const pages = 256 // 1 MiB
	db := openFile(t, Config{WALPages: pages, CheckpointEvery: 10 * time.Millisecond})
	body := []byte(`{"pad":"` + strings.Repeat("x", 4000) + `"}`)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var largest int64
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				ev := storegate.Event{Source: "s", Type: "t", Key: fmt.Sprintf("w%d-%d", w, i), Body: body}
				if _, _, err := db.Accept(ctx, ev, nil, storegate.Answer{Status: 204}); err != nil {
					t.Error(err)
					return
				}
				if st, err := os.Stat(db.wal); err == nil {
					mu.Lock()
					largest = max(largest, st.Size())
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	n, err := db.EventCount(ctx, "s")
	if err != nil || n != 16*500 {
		t.Fatalf("%d events stored (%v), want %d", n, err, 16*500)
	}
	// 8,000 events of 4 KiB went through the log: 32 MiB at least.
	if limit := int64(8 * pages * 4096); largest > limit {
		t.Errorf("the log reached %d bytes, want at most %d (%d pages allowed, then a restart)", largest, limit, pages)
	}
}
