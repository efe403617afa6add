package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"storegate"
	"storegate/store/engine"
)

// ErrState means the command is not in a state that allows the action (a
// replay of a command that is not dead, a discard of a pending one).
var ErrState = errors.New("store: command is not in the required state")

// ErrPaidGrant means a discard of a grant the player paid for from their
// wallet: the debit was taken with the payment, so giving up on the grant
// would keep the payment without it. It is replayed once its cause is
// fixed; a cancellation then credits the wallet back.
var ErrPaidGrant = errors.New("store: a grant paid from the player's wallet cannot be discarded")

// ErrBadCursor means a listing cursor that no listing gave.
var ErrBadCursor = errors.New("store: bad cursor")

// DeadLetterFilter selects dead letters. Zero fields select everything.
// A dead letter's time is when it died (next_at, which the dispatcher
// sets to the moment of the last attempt); the claim index (state, next_at)
// serves every listing.
type DeadLetterFilter struct {
	// State is dead (the default) or discarded.
	State storegate.State
	// ID selects one command by its transaction id.
	ID       string
	Target   string
	Source   string
	Kind     storegate.Kind
	PlayerID string
	// Since and Until bound when the command died: Since <= died < Until.
	Since time.Time
	Until time.Time
	// Limit caps the rows: default 100 for a listing, 1000 for a replay;
	// at most 10000.
	Limit int
	// Cursor continues a listing where the previous page ended
	// (DeadLetterPage.Next).
	Cursor string
}

// Empty reports whether the filter selects every dead letter.
func (f DeadLetterFilter) Empty() bool {
	return f.ID == "" && f.Target == "" && f.Source == "" && f.Kind == "" && f.PlayerID == "" &&
		f.Since.IsZero() && f.Until.IsZero()
}

const maxDeadLetters = 10000

// deadLettersSQL lists the dead letters matching where, newest first.
func deadLettersSQL(where string) string {
	return `SELECT ` + deadLetterColumns + ` FROM outbox WHERE ` + where + ` ORDER BY next_at DESC, id DESC LIMIT ?`
}

// where is the filter's condition; "state <> 'done'" lets SQLite use
// outbox_state, which leaves done commands out.
func (f DeadLetterFilter) where() (string, []any, error) {
	state := f.State
	if state == "" {
		state = storegate.StateDead
	}
	if state != storegate.StateDead && state != storegate.StateDiscarded {
		return "", nil, fmt.Errorf("store: dead letters are dead or discarded, not %q", state)
	}
	conds, args := []string{"state = ?", "state <> 'done'"}, []any{string(state)}
	eq := func(col, v string) {
		if v != "" {
			conds, args = append(conds, col+" = ?"), append(args, v)
		}
	}
	eq("target", f.Target)
	eq("kind", string(f.Kind))
	eq("player_id", f.PlayerID)
	if f.Source != "" {
		conds, args = append(conds, "event_id IN (SELECT id FROM inbox WHERE source = ?)"), append(args, f.Source)
	}
	eq("id", f.ID)
	if !f.Since.IsZero() {
		conds, args = append(conds, "next_at >= ?"), append(args, f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		conds, args = append(conds, "next_at < ?"), append(args, f.Until.UnixMicro())
	}
	return strings.Join(conds, " AND "), args, nil
}

func (f DeadLetterFilter) limit(def int) int {
	if f.Limit <= 0 {
		return def
	}
	return min(f.Limit, maxDeadLetters)
}

// DeadLetter is one dead (or discarded) command, as a listing shows it.
type DeadLetter struct {
	ID        string          `json:"id"`
	Kind      storegate.Kind  `json:"kind"`
	Target    string          `json:"target"`
	Source    string          `json:"source"`
	PlayerID  string          `json:"player_id"`
	OrderRef  string          `json:"order_ref,omitempty"`
	State     storegate.State `json:"state"`
	Attempts  int             `json:"attempts"`
	Replays   int             `json:"replays"`
	LastError string          `json:"last_error,omitempty"`
	DiedAt    time.Time       `json:"died_at"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// DeadLetterPage is one page of a listing; Next continues it.
type DeadLetterPage struct {
	DeadLetters []DeadLetter `json:"deadletters"`
	Next        string       `json:"next,omitempty"`
}

const deadLetterColumns = `id, kind, target, player_id, command, state, attempts, replays, last_error, next_at, created_at, updated_at`

func scanDeadLetter(scan func(...any) error) (DeadLetter, storegate.Command, error) {
	var d DeadLetter
	var c storegate.Command
	var payload string
	var died, created, updated int64
	if err := scan(&d.ID, &d.Kind, &d.Target, &d.PlayerID, &payload, &d.State, &d.Attempts, &d.Replays, &d.LastError,
		&died, &created, &updated); err != nil {
		return d, c, err
	}
	if err := json.Unmarshal([]byte(payload), &c); err != nil {
		return d, c, fmt.Errorf("decode command %s: %w", d.ID, err)
	}
	d.Source, d.OrderRef = c.Source, c.OrderRef
	d.DiedAt, d.CreatedAt, d.UpdatedAt = time.UnixMicro(died).UTC(), time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return d, c, nil
}

// DeadLetters lists dead letters, the most recently dead first.
func (db *DB) DeadLetters(ctx context.Context, f DeadLetterFilter) (DeadLetterPage, error) {
	where, args, err := f.where()
	if err != nil {
		return DeadLetterPage{}, err
	}
	if f.Cursor != "" {
		at, id, ok := parseCursor(f.Cursor)
		if !ok {
			return DeadLetterPage{}, ErrBadCursor
		}
		where += " AND (next_at < ? OR (next_at = ? AND id < ?))"
		args = append(args, at, at, id)
	}
	n := f.limit(100)
	rows, err := db.Query(ctx, deadLettersSQL(where), append(args, n)...)
	if err != nil {
		return DeadLetterPage{}, err
	}
	defer rows.Close()
	page := DeadLetterPage{DeadLetters: []DeadLetter{}}
	for rows.Next() {
		d, _, err := scanDeadLetter(rows.Scan)
		if err != nil {
			return DeadLetterPage{}, err
		}
		page.DeadLetters = append(page.DeadLetters, d)
	}
	if err := rows.Err(); err != nil {
		return DeadLetterPage{}, err
	}
	if len(page.DeadLetters) == n {
		last := page.DeadLetters[n-1]
		page.Next = strconv.FormatInt(last.DiedAt.UnixMicro(), 10) + ":" + last.ID
	}
	return page, nil
}

func parseCursor(s string) (int64, string, bool) {
	at, id, ok := strings.Cut(s, ":")
	if !ok {
		return 0, "", false
	}
	n, err := strconv.ParseInt(at, 10, 64)
	return n, id, err == nil
}

// EventInfo is the inbound event a command came from.
type EventInfo struct {
	ID           int64           `json:"id"`
	Source       string          `json:"source"`
	Type         string          `json:"type"`
	Key          string          `json:"key"`
	PlayerID     string          `json:"player_id,omitempty"`
	OrderRef     string          `json:"order_ref,omitempty"`
	Body         json.RawMessage `json:"body"`
	AnswerStatus int             `json:"answer_status"`
	ReceivedAt   time.Time       `json:"received_at"`
}

// DeadLetterAction is one replay or discard, with who did it.
type DeadLetterAction struct {
	Action string    `json:"action"`
	Actor  string    `json:"actor"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// DeadLetterDetail is everything support needs to judge one command: the
// command, the event it came from, every attempt and every action taken.
type DeadLetterDetail struct {
	DeadLetter
	Command storegate.Command  `json:"command"`
	Event   EventInfo          `json:"event"`
	History []Attempt          `json:"history"`
	Actions []DeadLetterAction `json:"actions"`
}

// DeadLetter returns one command by its transaction id, whatever its state
// (a command still retrying can be inspected too).
func (db *DB) DeadLetter(ctx context.Context, id string) (DeadLetterDetail, error) {
	var d DeadLetterDetail
	var err error
	d.DeadLetter, d.Command, err = scanDeadLetter(db.QueryRow(ctx, `SELECT `+deadLetterColumns+` FROM outbox WHERE id = ?`, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, err
	}
	var body []byte
	var received int64
	err = db.QueryRow(ctx, `SELECT i.id, i.source, i.type, i.key, i.player_id, i.order_ref, i.body, i.answer_status, i.received_at
		FROM inbox i JOIN outbox o ON o.event_id = i.id WHERE o.id = ?`, id).Scan(&d.Event.ID, &d.Event.Source, &d.Event.Type,
		&d.Event.Key, &d.Event.PlayerID, &d.Event.OrderRef, &body, &d.Event.AnswerStatus, &received)
	if err != nil {
		return d, fmt.Errorf("event of %s: %w", id, err)
	}
	d.Event.ReceivedAt = time.UnixMicro(received).UTC()
	if json.Valid(body) {
		d.Event.Body = body
	} else {
		d.Event.Body, _ = json.Marshal(string(body))
	}
	if d.History, err = db.Attempts(ctx, id); err != nil {
		return d, err
	}
	if d.History == nil {
		d.History = []Attempt{}
	}
	rows, err := db.Query(ctx, `SELECT action, actor, reason, at FROM deadletter_actions WHERE command_id = ? ORDER BY id`, id)
	if err != nil {
		return d, err
	}
	defer rows.Close()
	d.Actions = []DeadLetterAction{}
	for rows.Next() {
		var a DeadLetterAction
		var at int64
		if err := rows.Scan(&a.Action, &a.Actor, &a.Reason, &at); err != nil {
			return d, err
		}
		a.At = time.UnixMicro(at).UTC()
		d.Actions = append(d.Actions, a)
	}
	return d, rows.Err()
}

// Replay puts the dead letters the filter selects (at most its limit,
// oldest first) back to pending, due now, with their attempts reset. A
// command keeps its transaction id, so a target that did take effect after
// all recognises it and does not apply it twice. It returns the ids
// replayed, sorted. One id that is not a dead letter is an error (ErrNotFound,
// ErrState); a filter that matches nothing is not.
func (db *DB) Replay(ctx context.Context, f DeadLetterFilter, actor string) ([]string, error) {
	where, args, err := f.where()
	if err != nil {
		return nil, err
	}
	var ids []string
	err = db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		ids = ids[:0]
		now := tx.Now().UnixMicro()
		rows, err := tx.Query(ctx, `UPDATE outbox SET state = 'pending', attempts = 0, replays = replays + 1, next_at = ?,
			lease_owner = '', lease_until = 0, last_error = '', updated_at = ?
			WHERE id IN (SELECT id FROM outbox WHERE `+where+` ORDER BY next_at, id LIMIT ?)
				AND state IN ('dead', 'discarded') RETURNING id`,
			append([]any{now, now}, append(args, f.limit(1000))...)...)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if err := logAction(ctx, tx, id, "replay", actor, ""); err != nil {
				return err
			}
		}
		if len(ids) == 0 && f.ID != "" {
			return stateError(ctx, tx, f.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err // ids may still be filled by a write given up on
	}
	sort.Strings(ids) // RETURNING promises no order
	return ids, nil
}

// Discard gives up on a dead letter for good, saying why and who decided.
// A grant paid from the player's wallet is never given up on (ErrPaidGrant).
func (db *DB) Discard(ctx context.Context, id, reason, actor string) error {
	return db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		if err := refusePaidGrant(ctx, tx, id); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `UPDATE outbox SET state = 'discarded', updated_at = ? WHERE id = ? AND state = 'dead'`,
			tx.Now().UnixMicro(), id)
		if err != nil {
			return fmt.Errorf("discard %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return stateError(ctx, tx, id)
		}
		return logAction(ctx, tx, id, "discard", actor, reason)
	})
}

// refusePaidGrant refuses to give up on id when it is a dead grant that
// carries a wallet debit.
func refusePaidGrant(ctx context.Context, tx *engine.Tx, id string) error {
	var raw string
	err := tx.QueryRow(ctx, `SELECT command FROM outbox WHERE id = ? AND state = 'dead' AND kind = ?`, id, storegate.KindFulfill).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // not a dead grant: the update says what it is
	}
	if err != nil {
		return err
	}
	var c storegate.Command
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return fmt.Errorf("discard %s: %w", id, err)
	}
	if c.Debit != nil {
		return fmt.Errorf("%w: %s was paid with %d %s from the player's wallet", ErrPaidGrant, id, c.Debit.Amount, c.Debit.Currency)
	}
	return nil
}

func logAction(ctx context.Context, tx *engine.Tx, id, action, actor, reason string) error {
	_, err := tx.Exec(ctx, `INSERT INTO deadletter_actions (command_id, action, actor, reason, at) VALUES (?, ?, ?, ?, ?)`,
		id, action, truncate(actor, 200), truncate(reason, 1000), tx.Now().UnixMicro())
	return err
}

// stateError says why an action on one id changed nothing.
func stateError(ctx context.Context, tx *engine.Tx, id string) error {
	var state string
	err := tx.QueryRow(ctx, `SELECT state FROM outbox WHERE id = ?`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: %s is %s", ErrState, id, state)
}
