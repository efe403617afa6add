package store

import (
	"context"
	"time"
)

// Backlog is what waits on one target, or came from one source and waits:
// for the health page. Read from the commands that are not done, which the
// outbox_state index holds apart from the done ones.
type Backlog struct {
	Name          string
	Pending, Dead int
	OldestPending time.Time
	LastError     string
	LastErrorAt   time.Time
}

// TargetBacklogs are the pending and dead commands of each target that has
// any, with the latest error of a command not done: a target's answer, not
// a wait for its open breaker, which the breaker's state tells.
func (db *DB) TargetBacklogs(ctx context.Context) ([]Backlog, error) {
	byName := map[string]*Backlog{}
	var names []string
	get := func(name string) *Backlog {
		if b := byName[name]; b != nil {
			return b
		}
		byName[name] = &Backlog{Name: name}
		names = append(names, name)
		return byName[name]
	}
	rows, err := db.Query(ctx, `SELECT target, state, COUNT(*), MIN(created_at) FROM outbox
		WHERE state IN ('pending', 'dead') AND state <> 'done' GROUP BY target, state ORDER BY target`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var name, state string
		var n int
		var oldest int64
		if err := rows.Scan(&name, &state, &n, &oldest); err != nil {
			rows.Close()
			return nil, err
		}
		b := get(name)
		if state == "pending" {
			b.Pending, b.OldestPending = n, time.UnixMicro(oldest).UTC()
		} else {
			b.Dead = n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, name := range names {
		b := byName[name]
		var at int64
		err := db.QueryRow(ctx, `SELECT last_error, updated_at FROM outbox WHERE target = ? AND state IN ('pending', 'dead')
			AND state <> 'done' AND last_error <> '' AND last_error NOT LIKE 'wait%' ORDER BY updated_at DESC LIMIT 1`, name).Scan(&b.LastError, &at)
		if err == nil {
			b.LastErrorAt = time.UnixMicro(at).UTC()
		}
	}
	out := make([]Backlog, 0, len(names))
	for _, name := range names {
		out = append(out, *byName[name])
	}
	return out, nil
}

// SourceBacklogs are the pending commands of each source's events.
func (db *DB) SourceBacklogs(ctx context.Context) ([]Backlog, error) {
	rows, err := db.Query(ctx, `SELECT i.source, COUNT(*), MIN(o.created_at) FROM outbox o JOIN inbox i ON i.id = o.event_id
		WHERE o.state = 'pending' AND o.state <> 'done' GROUP BY i.source ORDER BY i.source`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Backlog
	for rows.Next() {
		var b Backlog
		var oldest int64
		if err := rows.Scan(&b.Name, &b.Pending, &oldest); err != nil {
			return nil, err
		}
		b.OldestPending = time.UnixMicro(oldest).UTC()
		out = append(out, b)
	}
	return out, rows.Err()
}
