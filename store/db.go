// Package store keeps storegate's durable state: the inbox of accepted
// events, the outbox of commands owed to targets, transaction links, dead
// letters and orders, and applies the schemas of the tables other packages
// keep beside them (the embedded ledger's). One implementation speaks two
// SQL dialects, SQLite (embedded, the default) and PostgreSQL (several
// replicas), and every write goes through a group committer so concurrent
// requests share one commit.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver (pure Go, no cgo)

	"storegate"
)

// Dialect is the SQL flavour behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Config opens a DB.
type Config struct {
	// DSN chooses the database: "sqlite:PATH" (a file, created with its
	// folder if missing, both private: see prepareFiles), "sqlite::memory:"
	// for tests, or a PostgreSQL URL
	// "postgres://user@host:5432/db". Required.
	DSN string
	// BatchMax caps how many writes share one commit. Default 256.
	BatchMax int
	// Writers is the number of concurrent committers. SQLite allows one
	// writer, so it is always 1 there. Default 4 for PostgreSQL.
	Writers int
	// ReadConns caps the read pool. Default 8.
	ReadConns int
	// CheckpointEvery is how often SQLite's write-ahead log is copied into
	// the database file while commits come (an idle store skips the pass).
	// Default 25ms: each pass then copies little, so the log's flushes
	// wait little behind it and behind the database file's flush after it.
	CheckpointEvery time.Duration
	// CommitPace is, on a SQLite file, the least time from the start of one
	// commit to the start of the next: under load, writes that arrive
	// meanwhile share a commit, so each commit's fixed cost (its pages
	// written whole to the log, its flush) is paid for more of them. A
	// lone write never waits longer than that, and usually not at all.
	// Default 1ms: short next to a flush, long enough for writes arriving
	// under load to gather; negative: none.
	CommitPace time.Duration
	// WALPages bounds SQLite's write-ahead log: past this many pages (4 KiB
	// each) the writer pauses for a checkpoint so that the log starts over
	// (see checkpointLoop). Default 65536 (256 MiB).
	WALPages int
	// FaultFor is how long Ping fails after a write could not commit (a
	// full disk, a read-only file system or database, a lost connection):
	// each failed commit starts it again. Default 10s.
	FaultFor time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Observer, when set, hears about every commit and every pause of the
	// writer for a log restart, for metrics. Optional.
	Observer Observer
	// Migrations are the schemas of the tables other packages keep in this
	// database (the ledger's: ledger.Migrations()), applied after the
	// store's own, in order. Optional.
	Migrations []Migrations

	// dbFlushed, when set, is called after each flush of a SQLite file's
	// database file (tests: the hook is in place before the flushes start).
	dbFlushed func()
}

// Observer hears how the committers spend their time. Calls come from the
// committer goroutines, between transactions: they must not block.
type Observer interface {
	// Committed reports a commit (or a failed one) of writes writes that
	// took took, from BEGIN to the answers.
	Committed(writes int, took time.Duration)
	// WriterCheckpoint reports a pause of the SQLite writer for the
	// checkpoint that lets the write-ahead log start over.
	WriterCheckpoint(took time.Duration)
	// Reconnected reports that a committer replaced a connection that could
	// not begin a transaction (see writer.begin).
	Reconnected()
	// LogSynced reports a flush of SQLite's write-ahead log that the
	// answers of one or more commits waited for (see logsync.go).
	LogSynced(took time.Duration)
	// AcceptsRetried reports a batch of accepts that failed as one
	// multi-row write (an inline grant not done, a target that panicked,
	// a statement error) and was rolled back to run one accept at a time,
	// each under its own savepoint: several times the cost, so a steady
	// stream of these is a target or a bug to look at.
	AcceptsRetried()
	// Delivered reports a command applied as it was accepted (see
	// ApplyOnAccept), once committed.
	Delivered(target string, v storegate.Verdict, d time.Duration)
}

func (c *Config) setDefaults() {
	if c.BatchMax <= 0 {
		c.BatchMax = 256
	}
	if c.Writers <= 0 {
		c.Writers = 4
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = 25 * time.Millisecond
	}
	if c.CommitPace == 0 {
		c.CommitPace = time.Millisecond
	}
	if c.WALPages <= 0 {
		c.WALPages = 65536
	}
	if c.ReadConns <= 0 {
		c.ReadConns = 8
	}
	if c.FaultFor <= 0 {
		c.FaultFor = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// DB is storegate's store. It is safe for concurrent use.
type DB struct {
	dialect Dialect
	write   *sql.DB
	read    *sql.DB
	now     func() time.Time
	obs     Observer
	// applier, when set, applies its target's commands as they are
	// accepted (SQLite).
	applier atomic.Pointer[applier]
	// payHold, when set, holds for its target's commands in a partner
	// payment's transaction (HoldOnPay).
	payHold atomic.Pointer[holder]
	jobs    chan *job
	// background holds the writes nobody waits on; see WriteBackground.
	background chan *job
	// maint holds work the writer runs between transactions (checkpoints).
	maint     chan func(*sql.Conn)
	ckptEvery time.Duration
	walPages  int
	batch     int
	stop      chan struct{}
	pace      time.Duration // SQLite file only; see Config.CommitPace
	// commits counts commits, so that checkpoint passes skip an idle store.
	commits atomic.Uint64
	// faults remembers the last write that could not commit; see Ping.
	faults faults
	// writersDone is closed once every committer has returned.
	writersDone chan struct{}
	writers     sync.WaitGroup
	wg          sync.WaitGroup
	closed      sync.Once
	syncState
}

// Open connects, applies pending migrations and starts the committers.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	cfg.setDefaults()
	dialect, write, read, file, err := connect(cfg)
	if err != nil {
		return nil, err
	}
	db := &DB{dialect: dialect, write: write, read: read, now: cfg.Now, obs: cfg.Observer,
		jobs: make(chan *job, 4*cfg.BatchMax), background: make(chan *job, 64), maint: make(chan func(*sql.Conn), 1), batch: cfg.BatchMax, stop: make(chan struct{}), writersDone: make(chan struct{}),
		ckptEvery: cfg.CheckpointEvery, walPages: cfg.WALPages, faults: faults{hold: cfg.FaultFor}}
	if err := db.migrate(ctx, append([]Migrations{own()}, cfg.Migrations...)); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	writers := cfg.Writers
	if dialect == SQLite {
		writers = 1
	}
	if file != "" {
		if err := db.startSyncer(ctx, cfg.dbFlushed); err != nil {
			write.Close()
			read.Close()
			return nil, fmt.Errorf("open sqlite %s: %w", file, err)
		}
		db.pace = max(cfg.CommitPace, 0)
		db.wg.Add(1)
		go db.checkpointLoop()
	}
	for range writers {
		w, err := db.newWriter()
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("writer connection: %w", err)
		}
		db.wg.Add(1)
		db.writers.Add(1)
		go db.commitLoop(w)
	}
	if db.settled != nil {
		db.wg.Add(1)
		db.writers.Add(1)
		go db.syncLoop()
	}
	go func() { db.writers.Wait(); close(db.writersDone) }()
	return db, nil
}

// startSyncer pins a connection and opens the syncer on it (logsync.go).
func (db *DB) startSyncer(ctx context.Context, dbFlushed func()) error {
	pin, err := db.read.Conn(ctx)
	if err != nil {
		return err
	}
	syncer, err := openLogSyncer(ctx, pin)
	if err != nil {
		pin.Close()
		return err
	}
	db.pin, db.syncer, db.syncLog, db.syncDB = pin, syncer, syncer.sync, syncer.syncDB
	if dbFlushed != nil {
		db.syncDB = func() error { err := syncer.syncDB(); dbFlushed(); return err }
	}
	db.settled = make(chan *settlement, 64)
	return nil
}

// connect opens the write and read pools, and names the database file on
// SQLite ("" in memory and on PostgreSQL).
func connect(cfg Config) (dialect Dialect, write, read *sql.DB, file string, err error) {
	switch {
	case strings.HasPrefix(cfg.DSN, "postgres://"), strings.HasPrefix(cfg.DSN, "postgresql://"):
		db, err := sql.Open("pgx", cfg.DSN)
		if err != nil {
			return "", nil, nil, "", fmt.Errorf("open postgres: %w", err)
		}
		db.SetMaxOpenConns(cfg.Writers + cfg.ReadConns)
		db.SetMaxIdleConns(cfg.Writers + cfg.ReadConns)
		return Postgres, db, db, "", nil
	case strings.HasPrefix(cfg.DSN, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(cfg.DSN, "sqlite:"), "//")
		if path == "" {
			return "", nil, nil, "", errors.New("sqlite DSN names no file")
		}
		memory := path == ":memory:"
		if memory {
			// A named shared-cache memory database, so the write and read
			// pools see the same data.
			path = fmt.Sprintf("file:mem%d?mode=memory&cache=shared", time.Now().UnixNano())
		} else {
			if file, err = filepath.Abs(path); err != nil {
				return "", nil, nil, "", fmt.Errorf("store file: %w", err)
			}
			if err := prepareFiles(file); err != nil {
				return "", nil, nil, "", err
			}
			path = "file:" + path + "?"
		}
		// WAL lets readers run beside the writer. Commits survive power loss:
		// the syncer flushes the log before anyone hears of them (NORMAL
		// leaves that flush to it, see logsync.go), once per batch or less.
		pragmas := "&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)"
		if !memory {
			pragmas += "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
		}
		// The writer never checkpoints on its own (that would stall every
		// request waiting on it); see checkpointLoop.
		write, err := sql.Open("sqlite", path+pragmas+"&_pragma=wal_autocheckpoint(0)")
		if err != nil {
			return "", nil, nil, "", fmt.Errorf("open sqlite: %w", err)
		}
		write.SetMaxOpenConns(1) // SQLite has one writer; serialise in Go, not on a lock
		read, err := sql.Open("sqlite", path+pragmas)
		if err != nil {
			write.Close()
			return "", nil, nil, "", fmt.Errorf("open sqlite: %w", err)
		}
		read.SetMaxOpenConns(cfg.ReadConns + 1) // one is pinned, see syncState
		if memory {
			// Keep the memory database alive for the life of the DB: it
			// lasts while one connection to it is open, and the writer's
			// may be replaced (see writer.begin), so an idle reader stays
			// open too.
			write.SetConnMaxIdleTime(0)
			write.SetMaxIdleConns(1)
			read.SetConnMaxIdleTime(0)
			if err := read.Ping(); err != nil {
				write.Close()
				read.Close()
				return "", nil, nil, "", fmt.Errorf("open sqlite: %w", err)
			}
		}
		return SQLite, write, read, file, nil
	default:
		return "", nil, nil, "", fmt.Errorf("unsupported store DSN %q: want sqlite:PATH or postgres://...", redactDSN(cfg.DSN))
	}
}

// IsConflict reports whether err is a PostgreSQL conflict between concurrent
// writers that running the write again resolves: a unique violation (another
// batch inserted the same key first), a deadlock, or a serialization
// failure. SQLite's single writer never has them.
func IsConflict(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	switch pg.Code {
	case "23505", "40P01", "40001":
		return true
	}
	return false
}

// redactDSN drops anything after a scheme that could hold a password.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		return dsn[:i] + "://..."
	}
	if len(dsn) > 12 {
		return dsn[:12] + "..."
	}
	return dsn
}

// checkpointLoop keeps the SQLite write-ahead log small. A PASSIVE
// checkpoint from a read connection copies the log into the database file
// beside the writer, but while the writer keeps appending it never catches up,
// and SQLite only starts the log over once it has: under sustained load the
// log grows by gigabytes (each request writes several pages). So when the
// log is past WALPages, the writer itself runs a PASSIVE checkpoint between
// two transactions: it copies only what the background passes have not, and
// its next transaction starts the log over. That pauses the writer, hence a
// large WALPages: the pause comes rarely, and the database file is flushed
// first (below) so that it stays short.
func (db *DB) checkpointLoop() {
	defer db.wg.Done()
	tick := time.NewTicker(db.ckptEvery)
	defer tick.Stop()
	// seen counts the commits before the last pass that copied the whole
	// log; none yet, so the first pass copies what the migrations wrote.
	seen := uint64(math.MaxUint64)
	for {
		select {
		case <-db.stop:
			return
		case <-tick.C:
		}
		n := db.commits.Load()
		if n == seen {
			continue // nothing new to copy
		}
		frames, copied, err := db.checkpointPassive()
		if err == nil && frames >= 0 && frames == copied {
			seen = n
		}
		// Each pass's copies are flushed to the database file at once, a
		// few at a time, not left to the kernel, which writes them out tens
		// of seconds later in bursts that the log's flushes (and the answers
		// waiting on them) would queue behind.
		if err == nil && db.syncer.dbWritten() {
			if err := db.syncDB(); err != nil {
				// What the pass copied may not be on disk: the log must not
				// start over on top of it.
				db.failStore(fmt.Errorf("store: flush the database file: %w", err))
				return
			}
		}
		if err != nil || frames < db.walPages {
			db.failOnIOError(err)
			continue
		}
		// The writer's checkpoint copies what was written since the last
		// pass here: a few more passes first make that small.
		for range 3 {
			if frames-copied < 512 {
				break
			}
			if frames, copied, err = db.checkpointPassive(); err != nil {
				db.failOnIOError(err)
				break
			}
		}
		// The writer's checkpoint ends with a flush of the database file,
		// which would hold the writer while it carried every page the passes
		// had copied since the last restart. Flushed here first, it carries
		// only the last passes', and the writer's pause stays short. (This
		// flush competes with the log's for the disk, which only delays
		// answers: the writer does not wait for log flushes, see logsync.go.)
		if err := db.syncDB(); err != nil {
			// What the passes copied may not be on disk: the log must not
			// start over on top of it.
			db.failStore(fmt.Errorf("store: flush the database file: %w", err))
			return
		}
		select {
		case db.maint <- func(conn *sql.Conn) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := conn.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
			db.failOnIOError(err)
		}:
		default: // one is already waiting
		}
	}
}

// checkpointPassive copies the log into the database beside the writer and
// returns the log's length and how much of it is copied, in pages: both -1
// when another checkpoint (the writer's) held the log, so none ran.
func (db *DB) checkpointPassive() (frames, copied int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var busy int
	err = db.read.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	if err == nil && busy != 0 {
		return -1, -1, nil
	}
	return frames, copied, err
}

// Dialect reports the SQL flavour.
func (db *DB) Dialect() Dialect { return db.dialect }

// Now is the store's clock.
func (db *DB) Now() time.Time { return db.now() }

// Close stops the committers after the queued writes and closes the pools.
func (db *DB) Close() error {
	var err error
	db.closed.Do(func() {
		close(db.stop)
		db.wg.Wait()
		if db.pin != nil {
			db.pin.Close()
			db.syncer.close()
		}
		err = errors.Join(db.write.Close(), db.read.Close())
	})
	return err
}

// Query runs a read-only query on the read pool. Placeholders are "?".
func (db *DB) Query(ctx context.Context, query string, args ...any) (*Rows, error) {
	rows, err := db.read.QueryContext(ctx, db.rebind(query), args...)
	if err != nil {
		return nil, err
	}
	return &Rows{Rows: rows}, nil
}

// Rows is *sql.Rows that, inside a write, tells its transaction when the
// rows end in a deadlock: on PostgreSQL a lock wait after the first row
// (SELECT ... FOR UPDATE over several rows) fails in Next, reported by Err,
// not by Query (see Tx.note).
type Rows struct {
	*sql.Rows
	tx *Tx
}

// Err is the error that ended the iteration, if any.
func (r *Rows) Err() error { return r.tx.note(r.Rows.Err()) }

// Close closes the rows; a caller that stops before the end, or at an
// error without asking Err, still lets the transaction know of a deadlock.
func (r *Rows) Close() error {
	err := r.Rows.Close() // pgx reads what is left of the rows: its error comes here
	r.tx.note(r.Rows.Err())
	return r.tx.note(err)
}

// QueryRow runs a read-only single-row query on the read pool.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return db.read.QueryRowContext(ctx, db.rebind(query), args...)
}

// rebind turns "?" placeholders into PostgreSQL's "$n".
func (db *DB) rebind(q string) string {
	if db.dialect != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Tx is one write, run inside a shared batch transaction. Its methods take
// "?" placeholders in both dialects.
type Tx struct {
	// tx is the PostgreSQL transaction. On SQLite it is nil: the writer runs
	// BEGIN and COMMIT itself on the connection it owns, so statements
	// prepared once on that connection can run inside every transaction
	// (database/sql's Tx.Stmt would prepare them again each time).
	tx  *sql.Tx
	db  *DB
	w   *writer
	now time.Time
	// hooks run after the batch commits, in order; see OnCommit.
	hooks []func()
	// depth names nested savepoints; marks are their hook counts.
	depth int
	marks []int
	// deadlocked is set when a statement lost a deadlock (PostgreSQL), even
	// if the write undid it under a savepoint and went on (an in-transaction
	// delivery records a retry): the batch must then commit before taking
	// more writes, see commit.
	deadlocked bool
}

// note remembers a statement's deadlock. t may be nil (reads outside a
// write, which take no locks).
func (t *Tx) note(err error) error {
	if t != nil && err != nil && isDeadlock(err) {
		t.deadlocked = true
	}
	return err
}

// OnCommit runs fn once the transaction has committed, and never if the
// write that registered it is undone. For caches that must not learn about
// what did not commit.
func (t *Tx) OnCommit(fn func()) { t.hooks = append(t.hooks, fn) }

// Savepoint runs fn so that, if it returns an error, everything it wrote is
// undone (and its OnCommit hooks dropped) while the rest of the transaction
// stays. The error is returned as is. Inside fn, Undo undoes what fn wrote so
// far and lets it go on.
func (t *Tx) Savepoint(ctx context.Context, fn func() error) error {
	name := fmt.Sprintf("s%d", t.depth)
	t.depth++
	t.marks = append(t.marks, len(t.hooks))
	defer func() { t.depth--; t.marks = t.marks[:len(t.marks)-1] }()
	if _, err := t.Exec(ctx, "SAVEPOINT "+name); err != nil {
		return fmt.Errorf("store: savepoint: %w", err)
	}
	err := fn()
	if err != nil {
		if uerr := t.Undo(ctx); uerr != nil {
			return fmt.Errorf("%w (after %v)", uerr, err)
		}
	}
	if _, rerr := t.Exec(ctx, "RELEASE SAVEPOINT "+name); rerr != nil {
		return fmt.Errorf("store: release savepoint: %w", rerr)
	}
	return err
}

// Undo rolls back to the innermost Savepoint, which stays open.
func (t *Tx) Undo(ctx context.Context) error {
	if t.depth == 0 {
		return errors.New("store: undo outside a savepoint")
	}
	t.hooks = t.hooks[:t.marks[len(t.marks)-1]]
	if _, err := t.Exec(ctx, fmt.Sprintf("ROLLBACK TO SAVEPOINT s%d", t.depth-1)); err != nil {
		return fmt.Errorf("store: rollback to savepoint: %w", err)
	}
	return nil
}

// Now is the time the batch started: every row a batch writes gets one time.
func (t *Tx) Now() time.Time { return t.now }

// Dialect reports the SQL flavour, for the few statements that differ.
func (t *Tx) Dialect() Dialect { return t.db.dialect }

// ForUpdate is " FOR UPDATE" on PostgreSQL, where concurrent writers must lock
// the rows they read, and "" on SQLite, whose single writer needs no lock.
func (t *Tx) ForUpdate() string {
	if t.db.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t.tx == nil {
		st, err := t.w.stmt(ctx, query)
		if err != nil {
			return nil, err
		}
		return st.ExecContext(ctx, args...)
	}
	res, err := t.tx.ExecContext(ctx, t.db.rebind(query), args...)
	return res, t.note(err)
}

// Query runs a query. On PostgreSQL a statement error before the first row
// comes from here (pgx's driver reads the first row before returning), one
// after it from the rows' Err.
func (t *Tx) Query(ctx context.Context, query string, args ...any) (*Rows, error) {
	var rows *sql.Rows
	var err error
	if t.tx == nil {
		st, serr := t.w.stmt(ctx, query)
		if serr != nil {
			return nil, serr
		}
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = t.tx.QueryContext(ctx, t.db.rebind(query), args...)
	}
	if err != nil {
		return nil, t.note(err)
	}
	return &Rows{Rows: rows, tx: t}, nil
}

// Row is one row of a query, like *sql.Row, but also carrying an error
// from preparing the statement.
type Row struct {
	row *sql.Row
	err error
	tx  *Tx
}

// Scan copies the row's columns into dest; sql.ErrNoRows when there is none.
func (r *Row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.tx.note(r.row.Scan(dest...))
}

func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) *Row {
	if t.tx == nil {
		st, err := t.w.stmt(ctx, query)
		if err != nil {
			return &Row{err: err}
		}
		return &Row{row: st.QueryRowContext(ctx, args...), tx: t}
	}
	return &Row{row: t.tx.QueryRowContext(ctx, t.db.rebind(query), args...), tx: t}
}
