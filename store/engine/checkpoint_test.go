package engine

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
)

// Under continuous writes the write-ahead log starts over instead of
// growing: before the writer's checkpoint it grew by every page written.
func TestSQLite_WALStaysBounded(t *testing.T) {
	const pages = 256 // 1 MiB
	path := filepath.Join(t.TempDir(), "s.db")
	restarts := &pauseCounter{}
	db, err := Open(context.Background(), Config{Migrations: items, DSN: "sqlite:" + path, WALPages: pages, CheckpointEvery: 10 * time.Millisecond, Observer: restarts})
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
				if err := db.Write(ctx, func(ctx context.Context, tx *Tx) error {
					_, err := tx.Exec(ctx, `INSERT INTO items (id, body) VALUES (?, ?)`, fmt.Sprintf("w%d-%d", w, i), body)
					return err
				}); err != nil {
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
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM items`).Scan(&n); err != nil || n != 16*500 {
		t.Fatalf("%d rows stored (%v), want %d", n, err, 16*500)
	}
	// 8,000 rows of 4 KiB went through the log: 32 MiB at least.
	if limit := int64(8 * pages * 4096); largest > limit {
		t.Errorf("the log reached %d bytes, want at most %d (%d pages allowed, then a restart)", largest, limit, pages)
	}
	if restarts.n.Load() == 0 {
		t.Error("the observer heard of no pause of the writer for a log restart")
	}
}

// pauseCounter is an Observer counting the writer's checkpoints.
type pauseCounter struct {
	nopObserver
	n atomic.Int64
}

func (p *pauseCounter) WriterCheckpoint(time.Duration) { p.n.Add(1) }
