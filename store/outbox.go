package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"storegate"
	"storegate/store/engine"
)

// ErrLeaseLost means a completion came from a worker whose lease had expired
// and been taken by another: the other worker's result stands.
var ErrLeaseLost = errors.New("store: lease lost")

// ErrNotFound means no row matched.
var ErrNotFound = errors.New("store: not found")

// Claimed is a command leased to one worker.
type Claimed struct {
	Command  storegate.Command
	Attempts int // attempts spent before this one
	seq      int64
}

// Claim leases up to n due commands of target to owner until now+lease. A
// command whose lease expired (its worker died) is due again, so a crash
// between claim and completion loses nothing; the target's idempotency by
// transaction id makes the second delivery harmless.
func (db *DB) Claim(ctx context.Context, owner, target string, n int, lease time.Duration) ([]Claimed, error) {
	var out []Claimed
	err := db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		out = out[:0]
		now := tx.Now()
		rows, err := tx.Query(ctx, claimSQL(tx.Dialect()), owner, now.Add(lease).UnixMicro(), target, now.UnixMicro(), now.UnixMicro(), n)
		if err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var payload string
			var c Claimed
			if err := rows.Scan(&payload, &c.Attempts, &c.seq); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(payload), &c.Command); err != nil {
				return fmt.Errorf("decode command: %w", err)
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		// out may still be written: a write whose caller gave up (ctx done)
		// can run after Write returns. Its leases expire; nothing is lost.
		return nil, err
	}
	// Oldest first, so a fulfillment runs before the revoke that follows it;
	// commands created at the same instant go in queueing order (RETURNING
	// promises no order of its own).
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Command.CreatedAt, out[j].Command.CreatedAt
		return a.Before(b) || a.Equal(b) && out[i].seq < out[j].seq
	})
	return out, nil
}

// Completion records the end of one delivery attempt.
type Completion struct {
	ID    string
	Owner string
	// State is pending (try again at NextAt), done or dead.
	State  storegate.State
	NextAt time.Time
	// Attempt is the attempt's number (1-based) when it was spent; 0 when the
	// command was not attempted (breaker open) and nothing is recorded.
	Attempt   int
	Outcome   storegate.Outcome
	StartedAt time.Time
	Duration  time.Duration
}

// Complete records an attempt's outcome if owner still holds the lease.
func (db *DB) Complete(ctx context.Context, c Completion) error {
	return db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error { return CompleteIn(ctx, tx, c) })
}

// CompleteAll records many attempts' outcomes in one background write (see
// WriteBackground), so deliveries finishing together share a commit
// instead of one each. The error at i is cs[i]'s: ErrLeaseLost for one
// whose lease was lost (it writes nothing, and the others are recorded), or
// the write's own error for all of them.
func (db *DB) CompleteAll(ctx context.Context, cs []Completion) []error {
	errs := make([]error, len(cs))
	err := db.WriteBackground(ctx, func(ctx context.Context, tx *engine.Tx) error {
		firsts := map[string][]int{} // first-time successes, by owner
		for i, c := range cs {
			if firstSuccess(c) {
				firsts[c.Owner] = append(firsts[c.Owner], i)
				continue
			}
			errs[i] = CompleteIn(ctx, tx, c)
			if errs[i] != nil && !errors.Is(errs[i], ErrLeaseLost) {
				return errs[i]
			}
		}
		for owner, at := range firsts {
			if err := completeFirsts(ctx, tx, owner, cs, at, errs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// errs is not read: a write whose caller gave up (ctx done) may
		// still be running, and filling it in.
		all := make([]error, len(cs))
		for i := range all {
			all[i] = err
		}
		return all
	}
	return errs
}

// firstSuccess reports whether c is a first attempt that succeeded: the
// outbox row alone records it, no attempt row.
func firstSuccess(c Completion) bool {
	return c.State == storegate.StateDone && c.Outcome.Verdict == storegate.VerdictDone && c.Attempt == 1 && c.NextAt.IsZero()
}

// completeFirstsChunk bounds the ids of one statement (SQLite allows 32,766
// parameters; PostgreSQL 65,535).
const completeFirstsChunk = 500

// completeFirsts records the first-time successes cs[at...] of owner with
// one statement per chunk, where CompleteIn would take one each: on
// PostgreSQL each statement is a round trip, and a busy lane's outcomes
// are mostly these. An id not returned was not owner's to complete
// (ErrLeaseLost).
func completeFirsts(ctx context.Context, tx *engine.Tx, owner string, cs []Completion, at []int, errs []error) error {
	for len(at) > 0 {
		chunk := at[:min(len(at), completeFirstsChunk)]
		at = at[len(chunk):]
		now := tx.Now().UnixMicro()
		args := []any{now, now, owner}
		for _, i := range chunk {
			args = append(args, cs[i].ID)
		}
		rows, err := tx.Query(ctx, `UPDATE outbox SET state = 'done', next_at = ?, attempts = attempts + 1,
			lease_owner = '', lease_until = 0, last_error = '', updated_at = ?
			WHERE lease_owner = ? AND id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`) RETURNING id`, args...)
		if err != nil {
			return fmt.Errorf("complete %d commands: %w", len(chunk), err)
		}
		done := map[string]bool{}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			done[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, i := range chunk {
			if !done[cs[i].ID] {
				errs[i] = ErrLeaseLost
			}
		}
	}
	return nil
}

// CompleteIn records an attempt's outcome inside tx, so a target whose
// effects live in the same database (the embedded ledger) commits its
// effect and the command's completion together. It returns ErrLeaseLost if
// owner no longer holds the lease.
func CompleteIn(ctx context.Context, tx *engine.Tx, c Completion) error {
	spent := 0
	if c.Attempt > 0 {
		spent = 1
	}
	next := c.NextAt
	if next.IsZero() {
		next = tx.Now()
	}
	lastErr := ""
	if c.Outcome.Verdict != storegate.VerdictDone {
		lastErr = describe(c.Outcome)
	}
	res, err := tx.Exec(ctx, `UPDATE outbox SET state = ?, next_at = ?, attempts = attempts + ?,
		lease_owner = '', lease_until = 0, last_error = ?, updated_at = ?
		WHERE id = ? AND lease_owner = ?`,
		string(c.State), next.UnixMicro(), spent, lastErr, tx.Now().UnixMicro(), c.ID, c.Owner)
	if err != nil {
		return fmt.Errorf("complete %s: %w", c.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrLeaseLost
	}
	// A first-time success needs no attempt row: the outbox row says done.
	// Failures are kept, for dead-letter inspection.
	if spent == 0 || (c.Outcome.Verdict == storegate.VerdictDone && c.Attempt == 1) {
		return nil
	}
	_, err = tx.Exec(ctx, `INSERT INTO attempts (command_id, n, verdict, http_status, code, message, started_at, duration_us, replay)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT replays FROM outbox WHERE id = ?))`,
		c.ID, c.Attempt, string(c.Outcome.Verdict), c.Outcome.HTTPStatus, c.Outcome.Code, truncate(c.Outcome.Message, 1000),
		c.StartedAt.UnixMicro(), c.Duration.Microseconds(), c.ID)
	return err
}

func describe(o storegate.Outcome) string {
	s := string(o.Verdict)
	if o.HTTPStatus != 0 {
		s += fmt.Sprintf(" http=%d", o.HTTPStatus)
	}
	if o.Code != "" {
		s += " code=" + o.Code
	}
	if o.Message != "" {
		s += ": " + o.Message
	}
	return truncate(s, 1000)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// CommandInfo is a command with its delivery state.
type CommandInfo struct {
	Command   storegate.Command `json:"command"`
	State     storegate.State   `json:"state"`
	Attempts  int               `json:"attempts"`
	NextAt    time.Time         `json:"next_at"`
	LastError string            `json:"last_error,omitempty"`
	EventID   int64             `json:"event_id"`
	UpdatedAt time.Time         `json:"updated_at"`
}

const commandColumns = `command, state, attempts, next_at, last_error, event_id, updated_at`

func scanCommand(scan func(...any) error) (CommandInfo, error) {
	var ci CommandInfo
	var payload string
	var next, updated int64
	if err := scan(&payload, &ci.State, &ci.Attempts, &next, &ci.LastError, &ci.EventID, &updated); err != nil {
		return ci, err
	}
	if err := json.Unmarshal([]byte(payload), &ci.Command); err != nil {
		return ci, fmt.Errorf("decode command: %w", err)
	}
	ci.NextAt, ci.UpdatedAt = time.UnixMicro(next).UTC(), time.UnixMicro(updated).UTC()
	return ci, nil
}

// Command returns one command by its transaction id.
func (db *DB) Command(ctx context.Context, id string) (CommandInfo, error) {
	ci, err := scanCommand(db.QueryRow(ctx, `SELECT `+commandColumns+` FROM outbox WHERE id = ?`, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return ci, ErrNotFound
	}
	return ci, err
}

// CommandState is where one command stands; "" when there is no such
// command.
func (db *DB) CommandState(ctx context.Context, id string) (storegate.State, error) {
	var state storegate.State
	err := db.QueryRow(ctx, `SELECT state FROM outbox WHERE id = ?`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return state, err
}

// claimSQL leases one target's due pending commands (arguments: owner,
// lease end, target, now, now, limit), read in order from an index on
// (target, next_at, seq): outbox_target_due on SQLite, whose index entries
// end in the rowid, and outbox_target_due_seq on PostgreSQL. seq is the
// queueing order: SQLite's rowid, PostgreSQL's identity. SKIP LOCKED
// lets replicas claim side by side without waiting for or ever sharing a
// row.
func claimSQL(d engine.Dialect) string {
	seq, skipLocked := "rowid", ""
	if d == engine.Postgres {
		seq, skipLocked = "seq", " FOR UPDATE SKIP LOCKED"
	}
	return `UPDATE outbox SET lease_owner = ?, lease_until = ?
		WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND target = ? AND next_at <= ? AND lease_until <= ?
			ORDER BY next_at, ` + seq + ` LIMIT ?` + skipLocked + `)
		RETURNING command, attempts, ` + seq
}

// depthSQL counts the commands in one state but done (see claimSQL).
const depthSQL = `SELECT COUNT(*) FROM outbox WHERE state = ? AND state <> 'done'`

// Depth counts the commands that are not done (pending, dead, discarded), for
// /metrics. Done commands are not counted: they only grow, and counting them
// would cost a scan of the whole history at every scrape.
func (db *DB) Depth(ctx context.Context) (map[storegate.State]int, error) {
	out := map[storegate.State]int{}
	for _, s := range []storegate.State{storegate.StatePending, storegate.StateDead, storegate.StateDiscarded} {
		var n int
		if err := db.QueryRow(ctx, depthSQL, string(s)).Scan(&n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, nil
}

// Attempt is one recorded delivery attempt.
type Attempt struct {
	// Replay is the replay round the attempt belongs to: 0 before any
	// replay of a dead letter.
	Replay     int               `json:"replay"`
	N          int               `json:"n"`
	Verdict    storegate.Verdict `json:"verdict"`
	HTTPStatus int               `json:"http_status,omitempty"`
	Code       string            `json:"code,omitempty"`
	Message    string            `json:"message,omitempty"`
	StartedAt  time.Time         `json:"started_at"`
	Duration   time.Duration     `json:"duration_ns"`
}

// Attempts lists a command's attempts, first first.
func (db *DB) Attempts(ctx context.Context, commandID string) ([]Attempt, error) {
	rows, err := db.Query(ctx, `SELECT replay, n, verdict, http_status, code, message, started_at, duration_us
		FROM attempts WHERE command_id = ? ORDER BY id`, commandID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var started, dur int64
		if err := rows.Scan(&a.Replay, &a.N, &a.Verdict, &a.HTTPStatus, &a.Code, &a.Message, &started, &dur); err != nil {
			return nil, err
		}
		a.StartedAt, a.Duration = time.UnixMicro(started).UTC(), time.Duration(dur)*time.Microsecond
		out = append(out, a)
	}
	return out, rows.Err()
}
