package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"
)

// On a SQLite file the writer commits with synchronous=NORMAL, which writes
// the commit to the write-ahead log without waiting for the disk, and a
// second goroutine, the syncer, flushes the log before the batch's writers
// get their answers. The writer goes on to the next batch while the disk
// works, instead of stopping for each flush, whose tail would queue every
// request behind it.
//
// Nothing is acknowledged before it is durable: every answer of a batch,
// errors included (a refusal can depend on an earlier batch's writes), is
// sent only after a flush that started after the batch's COMMIT, and one
// flush covers every commit before it. A batch that changed no row is the
// one exception: its answers need only the flushes of the batches before
// it, which the syncer, going in commit order, has waited for (syncLoop). Reads through the read pool can see a
// commit up to one flush before it is durable: a read whose answer tells a
// sender its write is done calls Durable first, and duplicates and
// refusals are decided inside the write.
//
// Checkpoints stay safe under NORMAL: SQLite flushes the log before copying
// it into the database and flushes the database before the log starts over.

// settlement is what a batch owes its writers once the log is flushed.
type settlement struct {
	committed bool // false: the batch failed, its answers are errors
	// idle: the batch committed and changed no row (a dispatcher's poll
	// that found nothing due), so it wrote nothing the log must keep.
	idle    bool
	hooks   []func()
	answers []answer
}

type answer struct {
	done chan error
	err  error
}

// logSyncer flushes a SQLite database's write-ahead log and file to disk.
// Both stay open for the life of the store: on Linux a descriptor reports a
// writeback error that happened while it was open even if another
// descriptor (SQLite's, or a checkpoint's) saw it first, while a descriptor
// opened afterwards would not. The log is the one SQLite uses (its name
// comes from SQLite, which resolves symbolic links), and it is never
// replaced while the store is open: SQLite removes it only when its last
// connection closes, and the store keeps one open (DB.pin).
type logSyncer struct {
	wal, db *os.File
	dbMod   time.Time // the database file's modification time at the last dbWritten
}

// openLogSyncer opens the log and database file of the database conn is
// connected to, and flushes their folder once (the log's name).
func openLogSyncer(ctx context.Context, conn *sql.Conn) (*logSyncer, error) {
	var file string
	rows, err := conn.QueryContext(ctx, "PRAGMA database_list")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var seq int
		var name, path string
		if err := rows.Scan(&seq, &name, &path); err != nil {
			rows.Close()
			return nil, err
		}
		if name == "main" {
			file = path
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if file == "" {
		return nil, errors.New("SQLite names no database file")
	}
	s := &logSyncer{}
	if s.db, err = os.Open(file); err != nil {
		return nil, err
	}
	if s.wal, err = os.Open(file + "-wal"); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("the write-ahead log: %w", err)
	}
	if err := syncFile(filepath.Dir(file)); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *logSyncer) sync() error   { return datasync(s.wal) }
func (s *logSyncer) syncDB() error { return datasync(s.db) }
func (s *logSyncer) close()        { s.wal.Close(); s.db.Close() }

// dbWritten reports whether the database file was written since the last
// call: a checkpoint pass that copied pages changed its modification time
// (passes are milliseconds apart, more than the clock's step). Not for
// durability decisions: a false true costs a flush, a false false only a
// later one (SQLite flushes the file itself before the log starts over).
func (s *logSyncer) dbWritten() bool {
	fi, err := s.db.Stat()
	if err != nil {
		return true
	}
	if fi.ModTime().Equal(s.dbMod) {
		return false
	}
	s.dbMod = fi.ModTime()
	return true
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

// release runs a settled batch's hooks and sends its answers. err, from a
// failed flush, replaces every answer, a refusal's too: it may rest on a
// commit that flush has lost.
func (s *settlement) release(err error) {
	if s.committed && err == nil {
		for _, h := range s.hooks {
			h()
		}
	}
	for _, a := range s.answers {
		if err != nil {
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
	flushed := false // the first group flushes what the migrations wrote
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
		// A group of idle commits needs no flush of its own: every batch
		// before it was answered after one (the syncer goes in commit
		// order), so what its reads saw is on disk. An idle gateway then
		// does not flush the log four times a second for its dispatcher.
		var err error
		if !flushed || slices.ContainsFunc(group, func(s *settlement) bool { return !s.idle }) {
			err, flushed = db.flush(), true
		} else {
			err = db.syncFailed()
		}
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
		return db.failStore(fmt.Errorf("store: flush the write-ahead log: %w", err))
	}
	return nil
}

// failStore stops the store for good with err (see flush) and returns the
// error it stopped with.
func (db *DB) failStore(err error) error {
	db.syncErr.CompareAndSwap(nil, &err)
	return *db.syncErr.Load()
}

// failOnIOError stops the store when a checkpoint failed on an I/O error
// (SQLITE_IOERR: a write or an fsync of the log or the database file): what
// it copied may not be on disk, and the log must not start over on top of it.
func (db *DB) failOnIOError(err error) {
	if sqliteCode(err) == 10 {
		db.failStore(fmt.Errorf("store: checkpoint: %w", err))
	}
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
	syncer  *logSyncer
	syncLog func() error // syncer.sync; tests replace it
	syncDB  func() error // syncer.syncDB (see Config.dbFlushed)
	syncErr atomic.Pointer[error]
	// pin is a connection held open so that SQLite never removes the log
	// the syncer holds (it does when its last connection closes).
	pin *sql.Conn
}

// Durable returns once every commit a read made before the call could have
// seen is on disk: for a read whose answer tells a sender its write is done
// (an order shown paid). It costs an empty write in the next group commit
// on a SQLite file, nothing elsewhere (commits are durable as they return).
func (db *DB) Durable(ctx context.Context) error {
	if db.settled == nil {
		return nil
	}
	return db.Write(ctx, func(context.Context, *Tx) error { return nil })
}
