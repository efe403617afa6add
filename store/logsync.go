package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// On a SQLite file the writer commits with synchronous=NORMAL, which writes
// the commit to the write-ahead log without waiting for the disk, and a
// second goroutine, the syncer, flushes the log before the batch's writers
// get their answers. The writer goes on to the next batch while the disk
// works: it no longer stops for each flush (0.3 ms typical, 3 to 6 ms in the
// tail on the benchmark machine, which queued every request behind it).
//
// Nothing is acknowledged before it is durable: every answer of a batch,
// errors included (a refusal can depend on an earlier batch's writes), is
// sent only after a flush that started after the batch's COMMIT, and one
// flush covers every commit before it. Reads through the read pool can see a
// commit up to one flush before it is durable; no read answers a sender's
// write (duplicates are found inside the write).
//
// Checkpoints stay safe under NORMAL: SQLite flushes the log before copying
// it into the database and flushes the database before the log starts over.

// settlement is what a batch owes its writers once the log is flushed.
type settlement struct {
	committed bool // false: the batch failed, its answers are errors
	hooks     []func()
	answers   []answer
}

type answer struct {
	done chan error
	err  error
}

// logSyncer flushes a SQLite write-ahead log to disk.
type logSyncer struct {
	wal, db string
	// last is the log file flushed last: a new one (SQLite removes the log
	// when its last connection closes and makes a new one) is a new name in
	// the folder, which is flushed too.
	last os.FileInfo
}

// sync flushes the log. The file is opened each time, not kept open: after
// SQLite made a new log, a kept descriptor would flush the old one.
func (s *logSyncer) sync() error {
	f, err := os.Open(s.wal)
	if errors.Is(err, fs.ErrNotExist) {
		// The last connection closed: SQLite copied the log into the
		// database, flushed it and removed the log. Flush the database
		// anyway; it is cheap when clean.
		return syncFile(s.db)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if s.last == nil || !os.SameFile(fi, s.last) {
		if err := syncFile(filepath.Dir(s.wal)); err != nil {
			return err
		}
		s.last = fi
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// settle hands a batch's answers and hooks over: at once where commits are
// durable when COMMIT returns (PostgreSQL, a memory database), else to the
// syncer.
func (db *DB) settle(s *settlement) {
	if db.settled == nil {
		s.release(nil)
		return
	}
	db.settled <- s
}

// release runs a settled batch's hooks and sends its answers; err, from a
// failed flush, replaces them when the batch committed.
func (s *settlement) release(err error) {
	if s.committed && err == nil {
		for _, h := range s.hooks {
			h()
		}
	}
	for _, a := range s.answers {
		if s.committed && err != nil {
			a.done <- err
			continue
		}
		a.done <- a.err
	}
}

// syncLoop flushes the log for the batches the writer committed and then
// answers their writers, in commit order, several batches per flush when the
// writer is ahead. It ends when the writer closes db.settled.
func (db *DB) syncLoop() {
	defer db.wg.Done()
	defer db.writers.Done()
	var group []*settlement
	for s := range db.settled {
		group = append(group[:0], s)
	more:
		for len(group) < cap(db.settled) {
			select {
			case s, ok := <-db.settled:
				if !ok {
					break more
				}
				group = append(group, s)
			default:
				break more
			}
		}
		err := db.flush()
		for _, s := range group {
			s.release(err)
		}
	}
}

// flush syncs the log, once: a failed flush fails the store for good.
// After fsync fails, Linux may have dropped the dirty pages and reports the
// error once: a later flush can succeed without the lost writes on disk. So,
// as PostgreSQL does, stop: every later write fails, /readyz says not ready,
// and a restart recovers from what the disk holds (senders retry what they
// got no 2xx for).
func (db *DB) flush() error {
	if err := db.syncFailed(); err != nil {
		return err
	}
	start := time.Now() // a duration for metrics: real time, not the injected clock
	err := db.syncLog()
	if db.obs != nil {
		db.obs.LogSynced(time.Since(start))
	}
	if err != nil {
		err = fmt.Errorf("store: flush the write-ahead log: %w", err)
		db.syncErr.CompareAndSwap(nil, &err)
		return err
	}
	return nil
}

// syncFailed returns the flush error that failed the store, if any.
func (db *DB) syncFailed() error {
	if p := db.syncErr.Load(); p != nil {
		return *p
	}
	return nil
}

// syncState is the syncer's part of DB.
type syncState struct {
	// settled carries committed batches to the syncer; nil when commits are
	// durable as they return.
	settled chan *settlement
	syncLog func() error
	syncErr atomic.Pointer[error]
}
