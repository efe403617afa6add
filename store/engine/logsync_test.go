package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// heldFlush replaces a DB's log flush with one the test releases: each call
// reports on started, then waits for a value on release and returns it.
type heldFlush struct {
	started chan struct{}
	release chan error
}

// holdFlushes holds db's flushes until the test releases them, or ends
// (a failing test must not leave Close waiting on a held flush).
func holdFlushes(t *testing.T, db *DB) *heldFlush {
	h := &heldFlush{started: make(chan struct{}, 8), release: make(chan error)}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	db.syncLog = func() error {
		h.started <- struct{}{}
		select {
		case err := <-h.release:
			return err
		case <-stop:
			return nil
		}
	}
	return h
}

func (h *heldFlush) waitStart(t *testing.T) {
	t.Helper()
	select {
	case <-h.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no flush of the log started")
	}
}

func openFile(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), Config{Migrations: items, DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// writeAsync starts a write of item id (or a write that fails after it, when
// fail) and returns where its answer arrives.
func writeAsync(db *DB, id string, fail bool) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- db.Write(context.Background(), func(ctx context.Context, tx *Tx) error {
			if err := insertItem(ctx, tx, id); err != nil {
				return err
			}
			if fail {
				return errors.New("refused")
			}
			return nil
		})
	}()
	return done
}

func stored(t *testing.T, db *DB, id string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM items WHERE id = ?`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// answered reports whether done gets an answer within 50 ms. The write is
// held by a flush the test has not released: an answer is a bug, and a bug
// that answers early answers within microseconds.
func answered(done <-chan error) bool {
	select {
	case <-done:
		return true
	case <-time.After(50 * time.Millisecond):
		return false
	}
}

// On a SQLite file a write's answer waits for the flush of the log that
// makes its commit durable, and so does a refusal that came after it (it
// may rest on what an earlier write stored); the writer meanwhile goes on
// committing the next writes.
func TestCommit_AnswersWaitForTheLogFlush(t *testing.T) {
	db := openFile(t)
	flush := holdFlushes(t, db)

	a := writeAsync(db, "a", false)
	flush.waitStart(t)
	if answered(a) {
		t.Fatal("the write was answered before the flush of the log")
	}
	if !stored(t, db, "a") {
		t.Fatal("the write was not committed before its flush")
	}

	// The writer is not held by the flush: b commits while a's flush runs.
	b := writeAsync(db, "b", false)
	c := writeAsync(db, "c", true)
	deadline := time.Now().Add(10 * time.Second)
	for !stored(t, db, "b") {
		if time.Now().After(deadline) {
			t.Fatal("the writer waited for the flush of an earlier commit")
		}
		time.Sleep(time.Millisecond)
	}
	flush.release <- nil
	if err := <-a; err != nil {
		t.Fatalf("write a: %v", err)
	}

	// b and c (committed or refused after the first flush started) wait for
	// a flush of their own. c may still be waiting for the writer: wait for
	// its outcome to show (no row, the write undone) before releasing.
	flush.waitStart(t)
	if answered(b) {
		t.Fatal("a later write was answered by the flush of an earlier one")
	}
	if answered(c) {
		t.Fatal("a refusal was answered before a flush that started after it")
	}
	flush.release <- nil
	if err := <-b; err != nil {
		t.Fatalf("write b: %v", err)
	}
	for {
		select {
		case err := <-c:
			if err == nil || err.Error() != "refused" {
				t.Fatalf("write c: %v, want its own refusal", err)
			}
			if stored(t, db, "c") {
				t.Fatal("the refused write was stored")
			}
			return
		case <-flush.started:
			flush.release <- nil
		case <-time.After(10 * time.Second):
			t.Fatal("the refused write got no answer")
		}
	}
}

// A failed flush may have lost the log's pages for good (Linux reports a
// writeback error once): the writes waiting on it fail, and so does every
// later write and /readyz's Ping, until a restart recovers from the disk.
func TestCommit_AFailedFlushStopsTheStore(t *testing.T) {
	db := openFile(t)
	flush := holdFlushes(t, db)

	a := writeAsync(db, "a", false)
	flush.waitStart(t)
	// A refusal settled behind the failing flush (it might rest on a's
	// commit, which the flush lost) gets the flush error, not its own.
	c := writeAsync(db, "c", true)
	if answered(c) {
		t.Fatal("a refusal was answered before the flush")
	}
	flush.release <- errors.New("EIO")
	if err := <-a; err == nil || !strings.Contains(err.Error(), "flush the write-ahead log") {
		t.Fatalf("write a: %v, want the flush error", err)
	}
	if err := <-c; err == nil || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("refused write behind the failed flush: %v, want the flush error", err)
	}

	var ran atomic.Bool
	err := db.Write(context.Background(), func(ctx context.Context, tx *Tx) error {
		ran.Store(true)
		return insertItem(ctx, tx, "b")
	})
	if err == nil || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("write after the failed flush: %v, want the flush error", err)
	}
	if ran.Load() || stored(t, db, "b") {
		t.Error("a write ran after the failed flush")
	}
	if err := db.Ping(context.Background()); err == nil {
		t.Error("Ping answers ready after a failed flush")
	}
}

// The real flush is wired in: a write on a file waits for one (the observer
// hears it), a memory database has no log to flush.
func TestCommit_FlushesTheLogOfAFile(t *testing.T) {
	for _, c := range []struct {
		dsn     string
		flushes bool
	}{
		{"sqlite:" + filepath.Join(t.TempDir(), "s.db"), true},
		{"sqlite::memory:", false},
	} {
		obs := &flushCounter{}
		db, err := Open(context.Background(), Config{Migrations: items, DSN: c.dsn, Observer: obs})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Write(context.Background(), func(ctx context.Context, tx *Tx) error { return insertItem(ctx, tx, "a") }); err != nil {
			t.Fatal(err)
		}
		if got := obs.n.Load() > 0; got != c.flushes {
			t.Errorf("%s: %d flushes before the answer, want flushes: %v", c.dsn, obs.n.Load(), c.flushes)
		}
		db.Close()
	}
}

// nopObserver is an Observer that ignores everything; the test observers
// embed it and keep the one call they are about.
type nopObserver struct{}

func (nopObserver) Committed(int, time.Duration)   {}
func (nopObserver) WriterCheckpoint(time.Duration) {}
func (nopObserver) Reconnected()                   {}
func (nopObserver) LogSynced(time.Duration)        {}
func (nopObserver) BulkRetried()                   {}

type flushCounter struct {
	nopObserver
	n atomic.Int64
}

func (f *flushCounter) LogSynced(time.Duration) { f.n.Add(1) }

// The syncer holds the log SQLite really writes, also when the store's
// path is a symbolic link (SQLite resolves it and puts the log beside the
// target: a syncer that built the name from the link flushed nothing).
func TestLogSyncer_HoldsTheRealLog(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o750); err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(dir, "real", "s.db")
	link := filepath.Join(dir, "link.db")
	if err := os.WriteFile(real, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	db, err := Open(context.Background(), Config{Migrations: items, DSN: "sqlite:" + link})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Write(context.Background(), func(ctx context.Context, tx *Tx) error { return insertItem(ctx, tx, "a") }); err != nil {
		t.Fatal(err)
	}
	want, err := os.Stat(real + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	held, err := db.syncer.wal.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(want, held) {
		t.Errorf("the syncer holds %s, want SQLite's log %s", held.Name(), real+"-wal")
	}
}

// A database without a write-ahead log (not in WAL mode) has nothing the
// syncer could flush: opening it is an error, not a syncer that flushes
// nothing.
func TestLogSyncer_RefusesADatabaseWithoutALog(t *testing.T) {
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "plain.db")+"?_pragma=journal_mode(DELETE)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, err := raw.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	if s, err := openLogSyncer(context.Background(), conn); err == nil {
		s.close()
		t.Fatal("a syncer opened on a database without a log")
	}
}

// A checkpoint that failed on an I/O error stops the store like a failed
// flush; a busy one does not.
func TestCommit_CheckpointIOErrorStopsTheStore(t *testing.T) {
	for _, c := range []struct {
		code  int
		stops bool
	}{
		{5, false},         // SQLITE_BUSY
		{10 | 4<<8, true},  // SQLITE_IOERR_FSYNC
		{10 | 24<<8, true}, // SQLITE_IOERR_... any extended I/O error
	} {
		db := openFile(t)
		db.failOnIOError(codedError(c.code))
		if stopped := db.Ping(context.Background()) != nil; stopped != c.stops {
			t.Errorf("code %d: store stopped %v, want %v", c.code, stopped, c.stops)
		}
		err := db.Write(context.Background(), func(ctx context.Context, tx *Tx) error { return insertItem(ctx, tx, "a") })
		if (err != nil) != c.stops {
			t.Errorf("code %d: write after the checkpoint error: %v", c.code, err)
		}
	}
}

// Durable holds a read's answer until what the read saw is on disk: a read
// can see a commit whose flush has not finished.
func TestDurable_WaitsForTheFlushOfWhatAReadSaw(t *testing.T) {
	db := openFile(t)
	flush := holdFlushes(t, db)

	a := writeAsync(db, "a", false)
	flush.waitStart(t)
	if !stored(t, db, "a") {
		t.Fatal("the read did not see the commit")
	}
	durable := make(chan error, 1)
	go func() { durable <- db.Durable(context.Background()) }()
	if answered(durable) {
		t.Fatal("Durable returned while the flush of what the read saw was held")
	}
	flush.release <- nil
	if err := <-a; err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case err := <-durable:
			if err != nil {
				t.Fatalf("Durable: %v", err)
			}
			return
		case <-flush.started:
			flush.release <- nil
		case <-time.After(10 * time.Second):
			t.Fatal("Durable never returned")
		}
	}
}

// A commit that changed no row (a dispatcher's poll that found nothing
// due, Durable's empty write) wrote nothing the log must keep: it is
// answered without a flush of its own, while a write that changed one is
// still answered only after one.
func TestCommit_AnIdleCommitIsAnsweredWithoutAFlush(t *testing.T) {
	db := openFile(t)
	ctx := context.Background()
	var flushes atomic.Int64
	flush := db.syncLog
	db.syncLog = func() error { flushes.Add(1); return flush() }
	write := func(fn func(context.Context, *Tx) error) int64 {
		t.Helper()
		before := flushes.Load()
		if err := db.Write(ctx, fn); err != nil {
			t.Fatal(err)
		}
		return flushes.Load() - before
	}
	// The store's first answers always wait for a flush (the migrations'
	// commits are not flushed by anything else): done with here.
	if n := write(func(context.Context, *Tx) error { return nil }); n != 1 {
		t.Errorf("the first write, which changed nothing, was answered after %d flushes, want 1", n)
	}
	if n := write(func(ctx context.Context, tx *Tx) error { return insertItem(ctx, tx, "a") }); n != 1 {
		t.Errorf("a write that inserted a row was answered after %d flushes, want 1", n)
	}
	idle := []struct {
		name string
		fn   func(context.Context, *Tx) error
	}{
		{"nothing", func(context.Context, *Tx) error { return nil }},
		{"a read", func(ctx context.Context, tx *Tx) error {
			return tx.QueryRow(ctx, `SELECT COUNT(*) FROM items`).Scan(new(int))
		}},
		{"an update of no row", func(ctx context.Context, tx *Tx) error {
			_, err := tx.Exec(ctx, `UPDATE items SET body = x'01' WHERE id = 'none'`)
			return err
		}},
	}
	for _, c := range idle {
		if n := write(c.fn); n != 0 {
			t.Errorf("%s: %d flushes, want none", c.name, n)
		}
	}
	for _, c := range []struct {
		name string
		sql  string
	}{
		{"an update", `UPDATE items SET body = x'02' WHERE id = 'a'`},
		{"a delete", `DELETE FROM items WHERE id = 'a'`},
	} {
		if n := write(func(ctx context.Context, tx *Tx) error { _, err := tx.Exec(ctx, c.sql); return err }); n != 1 {
			t.Errorf("%s: %d flushes, want 1", c.name, n)
		}
	}
}

// Each background checkpoint pass that copied pages into the database file
// flushes that file, long before the log must start over (WALPages): left
// to the kernel, the copies went out in bursts that held log flushes.
func TestCheckpoint_FlushesTheDatabaseFileAfterEachPass(t *testing.T) {
	var flushes atomic.Int64
	db, err := Open(context.Background(), Config{Migrations: items, DSN: "sqlite:" + filepath.Join(t.TempDir(), "s.db"),
		CheckpointEvery: 10 * time.Millisecond, dbFlushed: func() { flushes.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	time.Sleep(100 * time.Millisecond) // the migrations' pages are copied and flushed
	idle := flushes.Load()
	time.Sleep(50 * time.Millisecond)
	if n := flushes.Load() - idle; n != 0 {
		t.Errorf("%d flushes of the database file with nothing written: a pass that copies nothing flushes nothing", n)
	}
	for round := range 3 {
		before := flushes.Load()
		if err := db.Write(context.Background(), func(ctx context.Context, tx *Tx) error {
			return insertItem(ctx, tx, fmt.Sprintf("r%d", round))
		}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for flushes.Load() == before {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no flush of the database file after a checkpoint pass", round)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
