package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"storegate"
	"storegate/store"
)

// Under continuous writes the write-ahead log starts over instead of
// growing: before the writer's checkpoint it grew by every page written.
func TestSQLite_WALStaysBounded(t *testing.T) {
	const pages = 256 // 1 MiB
	path := filepath.Join(t.TempDir(), "s.db")
	restarts := &pauseCounter{}
	db, err := store.Open(context.Background(), store.Config{DSN: "sqlite:" + path, WALPages: pages, CheckpointEvery: 10 * time.Millisecond, Observer: restarts})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
				if st, err := os.Stat(path + "-wal"); err == nil {
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
	if restarts.n.Load() == 0 {
		t.Error("the observer heard of no pause of the writer for a log restart")
	}
}

// pauseCounter is a store.Observer counting the writer's checkpoints.
type pauseCounter struct{ n atomic.Int64 }

func (*pauseCounter) Committed(int, time.Duration)                       {}
func (p *pauseCounter) WriterCheckpoint(took time.Duration)              { p.n.Add(1) }
func (*pauseCounter) Reconnected()                                       {}
func (*pauseCounter) LogSynced(time.Duration)                            {}
func (*pauseCounter) BulkRetried()                                       {}
func (*pauseCounter) Delivered(string, storegate.Verdict, time.Duration) {}
