package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrClosed is returned for writes submitted after Close.
var ErrClosed = errors.New("store: closed")

type job struct {
	ctx  context.Context
	fn   func(context.Context, *Tx) error
	done chan error
	// bulk, when set, is the kind of write this is, member its part: the
	// committer writes all the members of a kind in a batch together,
	// through the kind, and runs fn only for one alone or when that failed.
	bulk   bulker
	member any
}

// Bulk is a kind of write that a commit can write all at once, with a few
// multi-row statements instead of each write's own (the inbox's accepts).
// The committer hands the members of a batch, when there is more than one,
// to the kind first thing in the transaction, and if that fails rolls the
// transaction back and runs each member's own write alone, under its own
// savepoint, so one bad member cannot fail the others. No savepoint guards
// the members written together: SQLite keeps a copy of every page changed
// under a savepoint and walks that copy at the end of every statement, which
// for a large batch makes its commit quadratic in its size.
type Bulk[T any] struct {
	all func(ctx context.Context, tx *Tx, members []T) error
}

// NewBulk makes a bulk kind: all writes its members together in tx. Like a
// write's fn, all must keep no state outside tx that it relies on when it
// fails; what it tells a member (through the member, a pointer) its caller
// reads only once Write has returned without an error.
func NewBulk[T any](all func(ctx context.Context, tx *Tx, members []T) error) *Bulk[T] {
	return &Bulk[T]{all: all}
}

// Write is DB.Write for member, a write of kind b: alone writes it by
// itself, when it is the only member of b in its batch, or when writing the
// batch's members together failed.
func (b *Bulk[T]) Write(ctx context.Context, db *DB, member T, alone func(context.Context, *Tx) error) error {
	return db.submit(ctx, db.jobs, &job{ctx: ctx, fn: alone, bulk: b, member: member, done: make(chan error, 1)})
}

// bulker is a Bulk of any member type, for the committer.
type bulker interface {
	writeAll(ctx context.Context, tx *Tx, members []any) error
}

func (b *Bulk[T]) writeAll(ctx context.Context, tx *Tx, members []any) error {
	ms := make([]T, len(members))
	for i, m := range members {
		ms[i] = m.(T)
	}
	return b.all(ctx, tx, ms)
}

// Write runs fn in a transaction and returns after it is committed. Writes
// submitted concurrently share one transaction and one commit (group commit);
// each runs under its own savepoint, so one failing write does not undo the
// others. fn must keep no state outside the transaction that it relies on
// when Write returns an error: a failed commit undoes every write in it. fn
// may run more than once: on PostgreSQL, whose several committers can
// deadlock or race on a unique key, a write that lost is run again (up to
// 5 times); it then sees what the winner committed.
func (db *DB) Write(ctx context.Context, fn func(context.Context, *Tx) error) error {
	return db.submit(ctx, db.jobs, &job{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// WriteBackground is Write for work nobody is waiting on (the dispatcher's
// deliveries). A commit takes background writes after the writes of waiting
// requests and only a few of them: on SQLite one per bgPerRequests requests
// (at least one, so they are never starved) or up to bgIdle with no request
// waiting; on PostgreSQL one. A backlog of deliveries cannot make senders
// wait, and on SQLite it drains in large commits when they stop.
func (db *DB) WriteBackground(ctx context.Context, fn func(context.Context, *Tx) error) error {
	return db.submit(ctx, db.background, &job{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

func (db *DB) submit(ctx context.Context, queue chan *job, j *job) error {
	for attempt := 1; ; attempt++ {
		err := db.submitOnce(ctx, queue, j)
		if err == nil || attempt == maxConflictRetries || !IsConflict(err) {
			return err
		}
		j = &job{ctx: j.ctx, fn: j.fn, bulk: j.bulk, member: j.member, done: make(chan error, 1)}
	}
}

const (
	bgPerRequests = 4
	bgIdle        = 16
)

// backgroundLimit is how many background writes a commit carrying fg
// waiting writes takes: on SQLite one per bgPerRequests of them (at least
// one), or up to bgIdle when none waits, so a backlog of deliveries neither
// makes senders wait nor costs a commit for every few deliveries. PostgreSQL
// takes one: its writers commit side by side, and a transaction holding many
// players' wallets deadlocks with other replicas' transactions holding them
// in another order.
func (db *DB) backgroundLimit(fg int) int {
	switch {
	case db.dialect != SQLite:
		return 1
	case fg == 0:
		return bgIdle
	default:
		return max(1, fg/bgPerRequests)
	}
}

// maxConflictRetries bounds how often a write that lost a conflict runs.
const maxConflictRetries = 5

func (db *DB) submitOnce(ctx context.Context, queue chan *job, j *job) error {
	select {
	case <-db.stop:
		return ErrClosed
	default:
	}
	select {
	case queue <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-db.stop:
		return ErrClosed
	}
	return db.await(ctx, j)
}

// await waits for a queued job's answer.
func (db *DB) await(ctx context.Context, j *job) error {
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		// The write may still commit; callers treat this as "unknown" and
		// the sender's retry finds the stored result.
		return ctx.Err()
	case <-db.writersDone:
		// Closing: the committers answered every job they took. One queued
		// after their last look never ran.
		select {
		case err := <-j.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// writer is one committer's connection. On SQLite it keeps the statements it
// has prepared: parsing SQL was a fifth of the gateway's CPU under load, and
// the single writer connection lives as long as the DB. (pgx caches prepared
// statements by itself.)
type writer struct {
	db    *DB
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
	conns int // connections replaced, see changes
}

// stmt returns the prepared statement for query, preparing it on first use.
func (w *writer) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := w.stmts[query]; ok {
		return st, nil
	}
	st, err := w.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if len(w.stmts) >= 2048 {
		// Queries are constants in the code, or multi-row statements of 1
		// to MaxRows rows (some 800 variants in all); this only guards
		// against a caller building SQL with variable text.
		for q, old := range w.stmts {
			old.Close()
			delete(w.stmts, q)
		}
	}
	w.stmts[query] = st
	return st, nil
}

// begin starts the batch's transaction. A connection that cannot start one
// is replaced, once per batch: PostgreSQL may have dropped it (a restart, a
// failover), or a failed ROLLBACK may have left SQLite inside the last
// transaction. Kept, it would fail every later write while /readyz, which
// reads through the pool, still answered ready.
func (w *writer) begin(ctx context.Context) (*Tx, error) {
	tx, err := w.beginOn(ctx)
	if err == nil || isBusy(err) {
		return tx, err
	}
	if rerr := w.reconnect(ctx); rerr != nil {
		return nil, fmt.Errorf("%w (new connection: %v)", err, rerr)
	}
	if w.db.obs != nil {
		w.db.obs.Reconnected()
	}
	return w.beginOn(ctx)
}

// isBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED
// (another process holds the write lock past busy_timeout): the connection
// is fine, and a new one would wait as long.
func isBusy(err error) bool {
	switch sqliteCode(err) {
	case 5, 6:
		return true
	}
	return false
}

// sqliteCode is err's SQLite primary result code, or 0 if err has none.
func sqliteCode(err error) int {
	var coded interface{ Code() int }
	if !errors.As(err, &coded) {
		return 0
	}
	return coded.Code() & 0xff
}

// reconnect discards the writer's connection and its prepared statements
// and takes a new connection from the pool.
func (w *writer) reconnect(ctx context.Context) error {
	for q, st := range w.stmts {
		st.Close()
		delete(w.stmts, q)
	}
	// Returning ErrBadConn from Raw makes database/sql close the connection
	// instead of putting it back in the pool.
	w.conn.Raw(func(any) error { return driver.ErrBadConn })
	w.conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := w.db.write.Conn(ctx)
	if err != nil {
		return err
	}
	w.conn = conn
	w.conns++
	return nil
}

// changes reads SQLite's count of the rows the writer's connection has
// inserted, updated or deleted since it opened, rolled back ones included,
// with the number of connections it has replaced: a commit whose pair
// reads the same before and after changed no row, so its log holds
// nothing to flush. ok is false where that cannot be told (PostgreSQL, a
// memory database, an error): flush as usual.
func (w *writer) changes(ctx context.Context, tx *Tx) (n int64, conns int, ok bool) {
	if w.db.settled == nil {
		return 0, 0, false
	}
	if err := tx.QueryRow(ctx, "SELECT total_changes()").Scan(&n); err != nil {
		return 0, 0, false
	}
	return n, w.conns, true
}

// beginOn starts a transaction on the writer's connection: BEGIN IMMEDIATE
// on SQLite (take the write lock now, not at the first write), a
// database/sql Tx on PostgreSQL.
func (w *writer) beginOn(ctx context.Context) (*Tx, error) {
	tx := &Tx{db: w.db, w: w, now: w.db.now()}
	if w.db.dialect == SQLite {
		_, err := tx.Exec(ctx, "BEGIN IMMEDIATE")
		return tx, err
	}
	sqlTx, err := w.conn.BeginTx(ctx, nil)
	tx.tx = sqlTx
	return tx, err
}

func (t *Tx) commit(ctx context.Context) error {
	if t.tx != nil {
		return t.tx.Commit()
	}
	_, err := t.Exec(ctx, "COMMIT")
	return err
}

func (t *Tx) rollback(ctx context.Context) {
	if t.tx != nil {
		t.tx.Rollback()
		return
	}
	t.Exec(ctx, "ROLLBACK")
}

func (w *writer) close() {
	for _, st := range w.stmts {
		st.Close()
	}
	w.conn.Close()
}

func (db *DB) newWriter() (*writer, error) {
	conn, err := db.write.Conn(context.Background())
	if err != nil {
		return nil, err
	}
	return &writer{db: db, conn: conn, stmts: map[string]*sql.Stmt{}}, nil
}

func (db *DB) commitLoop(w *writer) {
	defer db.wg.Done()
	defer db.writers.Done()
	defer w.close()
	if db.settled != nil {
		defer close(db.settled) // the syncer answers what is left, then stops
	}
	batch := make([]*job, 0, db.batch)
	var last time.Time // the last commit's start, for db.pace
	for {
		batch = batch[:0]
		bg := 0 // background writes in the batch
		select {
		case j := <-db.jobs:
			batch = append(batch, j)
		case j := <-db.background:
			batch, bg = append(batch, j), 1
		case fn := <-db.maint:
			start := time.Now()
			fn(w.conn)
			if db.obs != nil {
				db.obs.WriterCheckpoint(time.Since(start))
			}
			continue
		case <-db.stop:
			// Finish what was queued before Close.
			for {
				select {
				case j := <-db.jobs:
					db.commitAll(w, []*job{j})
				case j := <-db.background:
					db.commitAll(w, []*job{j})
				default:
					return
				}
			}
		}
		if db.pace > 0 {
			if wait := db.pace - time.Since(last); wait > 0 {
				time.Sleep(wait)
			}
			last = time.Now()
		}
	drain:
		for len(batch) < db.batch {
			select {
			case j := <-db.jobs:
				batch = append(batch, j)
			default:
				break drain
			}
		}
		// Background writes ride behind the waiting requests.
		limit := db.backgroundLimit(len(batch) - bg)
	topUp:
		for ; bg < limit && len(batch) < db.batch; bg++ {
			select {
			case j := <-db.background:
				batch = append(batch, j)
			default:
				break topUp
			}
		}
		db.commitAll(w, batch)
	}
}

// commitAll commits batch, in as many transactions as deadlocks split it
// into (see commit), and reports each to the observer.
func (db *DB) commitAll(w *writer, batch []*job) {
	for len(batch) > 0 {
		start := time.Now() // a duration for metrics: real time, not the injected clock
		rest := db.commit(w, batch)
		db.commits.Add(1)
		if db.obs != nil {
			db.obs.Committed(len(batch)-len(rest), time.Since(start))
		}
		batch = rest
	}
}

func (db *DB) commit(w *writer, batch []*job) (rest []*job) {
	live := batch[:0:0]
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.done <- err
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return nil
	}
	if err := db.syncFailed(); err != nil {
		fail(live, err)
		return nil
	}
	ctx := context.Background() // a batch outlives any one caller's context
	tx, err := w.begin(ctx)
	if err != nil {
		db.settle(db.failed(live, fmt.Errorf("store: begin: %w", err)))
		return nil
	}
	changes0, conns0, known := w.changes(ctx, tx)
	results := make([]error, len(live))
	// The members of each bulk kind first, together (see Bulk); any other
	// write, and a kind's lone member, runs as its own job.
	kinds, together := bulks(live)
	batched := false
	if len(kinds) > 0 {
		if tx, batched, err = db.writeBulks(ctx, w, tx, kinds); err != nil {
			db.settle(db.failed(live, fmt.Errorf("store: begin: %w", err)))
			return nil
		}
	}
	single := len(live) == 1
	// rest are the writes not run once the transaction lost a deadlock
	// (see below; the writes of a bulk kind can too: an accept's grant).
	for i, j := range live {
		if batched && together[i] {
			continue
		}
		if tx.deadlocked {
			rest = append(rest, j)
			continue
		}
		hooks := len(tx.hooks)
		if single {
			results[i] = runJob(ctx, j, tx)
			continue
		}
		if _, err := tx.Exec(ctx, "SAVEPOINT w"); err != nil {
			results[i] = fmt.Errorf("store: savepoint: %w", err)
			continue
		}
		results[i] = runJob(ctx, j, tx)
		if results[i] != nil {
			tx.hooks = tx.hooks[:hooks] // an undone write's hooks never run
			if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT w"); err != nil {
				// The transaction is in an unknown state: fail the batch.
				tx.rollback(ctx)
				db.settle(db.failed(live, fmt.Errorf("store: rollback to savepoint: %w", err)))
				return nil
			}
		}
		if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT w"); err != nil {
			tx.rollback(ctx)
			db.settle(db.failed(live, fmt.Errorf("store: release savepoint: %w", err)))
			return nil
		}
		// The write lost a deadlock, or one of its statements did and it
		// undid that itself (an in-transaction delivery records a retry):
		// tx.deadlocked. Rolling back to a savepoint undid only that: a lock
		// that closes the cycle may be held by an earlier write of the
		// batch, and the other transaction, whose deadlock check has run,
		// keeps waiting for our commit. Every later write that waits on it
		// would deadlock again, one deadlock_timeout (1 s) each: for 200
		// writes, minutes. So the writes after it go to rest, for a new
		// transaction once this one has committed.
		tx.note(results[i])
	}
	for _, err := range results {
		if storageFault(err) {
			db.fault(err)
		}
	}
	if single && results[0] != nil {
		tx.rollback(ctx)
		// The refusal may rest on an earlier batch's writes: it waits for
		// them to be durable like any answer.
		db.settle(&settlement{answers: []answer{{live[0].done, results[0]}}})
		return nil
	}
	changes, conns, ok := w.changes(ctx, tx)
	idle := known && ok && changes == changes0 && conns == conns0
	if err := tx.commit(ctx); err != nil {
		tx.rollback(ctx) // a failed COMMIT can leave the transaction open
		db.settle(db.failed(live, fmt.Errorf("store: commit: %w", err)))
		return nil
	}
	s := &settlement{committed: true, hooks: tx.hooks, idle: idle}
	for i, j := range live {
		if slices.Contains(rest, j) {
			continue
		}
		s.answers = append(s.answers, answer{j.done, results[i]})
	}
	db.settle(s)
	return rest
}

// bulkKind is the members of one bulk kind in a batch.
type bulkKind struct {
	kind    bulker
	members []any
}

// bulks gathers the members of each bulk kind that has more than one in
// live, kinds in the order they first appear; together[i] tells whether
// live[i] is one of them.
func bulks(live []*job) (kinds []bulkKind, together []bool) {
	if !slices.ContainsFunc(live, func(j *job) bool { return j.bulk != nil }) {
		return nil, nil
	}
	count := map[bulker]int{}
	for _, j := range live {
		if j.bulk != nil {
			count[j.bulk]++
		}
	}
	together = make([]bool, len(live))
	at := map[bulker]int{}
	for i, j := range live {
		if j.bulk == nil || count[j.bulk] < 2 {
			continue
		}
		together[i] = true
		k, ok := at[j.bulk]
		if !ok {
			k = len(kinds)
			at[j.bulk] = k
			kinds = append(kinds, bulkKind{kind: j.bulk})
		}
		kinds[k].members = append(kinds[k].members, j.member)
	}
	return kinds, together
}

// writeBulks writes each kind's members together, first in tx. If one
// kind fails it rolls tx back and returns a fresh transaction and false:
// the caller then writes every member alone.
func (db *DB) writeBulks(ctx context.Context, w *writer, tx *Tx, kinds []bulkKind) (*Tx, bool, error) {
	for _, k := range kinds {
		if err := k.kind.writeAll(ctx, tx, k.members); err != nil {
			if db.obs != nil {
				db.obs.BulkRetried()
			}
			tx.rollback(ctx)
			tx, err := w.begin(ctx)
			return tx, false, err
		}
	}
	return tx, true, nil
}

// failed is a batch that did not commit: every write gets err, and Ping
// reports the fault.
func (db *DB) failed(jobs []*job, err error) *settlement {
	db.fault(err)
	s := &settlement{answers: make([]answer, len(jobs))}
	for i, j := range jobs {
		s.answers[i] = answer{j.done, err}
	}
	return s
}

// fail answers every job with err at once.
func fail(jobs []*job, err error) {
	for _, j := range jobs {
		j.done <- err
	}
}

// isDeadlock reports whether err is PostgreSQL's deadlock_detected.
func isDeadlock(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "40P01"
}

// runJob runs one write, turning a panic into an error so one bad write
// cannot take down the committer and every request waiting on it. It gets the
// batch's context, not its caller's: cancelling a statement would abort the
// whole shared transaction in both SQLite and PostgreSQL.
func runJob(ctx context.Context, j *job, tx *Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: write panicked: %v", r)
		}
	}()
	return j.fn(ctx, tx)
}
