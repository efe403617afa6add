package store

import (
	"fmt"
	"os"
)

// SQLite commits are made durable apart from the writer. The writer commits
// with synchronous=NORMAL (the log is written, not flushed) and hands the
// batch to syncLoop, which flushes the log with one fdatasync for every
// batch committed meanwhile and only then answers their callers. So the
// writer prepares the next batch while the disk flushes the last one,
// instead of waiting for it: the flush was half of the writer's time at
// 5,000 requests/s.
//
// What a caller is told is as durable as with synchronous=FULL: the flush
// starts after its batch's log frames were written, and the log is replayed
// in order after a crash, so a batch is never answered before every batch
// before it is durable. Reads may see a commit up to one flush before it is
// durable; nothing acts on that outside the database (the dispatcher claims
// commands with a write, whose answer waits for the flush).

// syncAhead is how many committed batches may wait for their flush while the
// writer goes on; more would only make smaller commits.
const syncAhead = 1

// syncLoop flushes the log for committed batches and then finishes them.
func (db *DB) syncLoop() {
	defer db.wg.Done()
	for first := range db.syncq {
		batch := []func(error){first}
	more:
		for {
			select {
			case f, ok := <-db.syncq:
				if !ok {
					break more
				}
				batch = append(batch, f)
			default:
				break more
			}
		}
		err := db.syncWAL()
		for _, f := range batch {
			f(err)
		}
	}
}

// syncWAL flushes the write-ahead log. A failed flush is final: the kernel
// may have dropped the pages it could not write, so retrying could report
// success for data that is gone. Every later write fails too, and /readyz
// with it, until the process restarts and SQLite recovers from what is on
// disk.
func (db *DB) syncWAL() error {
	if err := db.failed.Load(); err != nil {
		return *err
	}
	// Opened per flush: a flush through any descriptor of the file covers
	// what every descriptor wrote, and a fresh one always names the log
	// SQLite is using.
	f, err := os.Open(db.wal)
	if err == nil {
		err = fdatasync(f)
		f.Close()
	}
	if err != nil {
		err = fmt.Errorf("store: flush the write-ahead log: %w", err)
		db.failed.Store(&err)
	}
	return err
}
