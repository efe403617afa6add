package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/store"
	"storegate/store/engine"
)

// The floors are servers that do less than any durable gateway can, on the
// same machine and under the same load as the gateway, so the table says
// what the goals leave for storegate's own work:
//
//   - floor-file: each body appended to a file and flushed (fdatasync) before
//     the 204, many bodies per flush (group commit). No parsing, no
//     signature, no schema, no duplicate check: the least any design that
//     answers only after its write is on disk can do.
//   - floor-sqlite: each body inserted under its order's key into one
//     table of a SQLite file (the same pure-Go SQLite as the store; WAL,
//     synchronous=FULL so each commit is flushed, SQLite's own checkpoints),
//     many bodies per transaction (its commands column stays empty). A
//     unique key is the least a store that must answer duplicates once can
//     have.
//   - floor-store: the event alone through storegate's own SQLite store
//     (group commit, the log flushed before the answer, checkpoints): the
//     inbox row and its duplicate key, no command, no grant, no signature,
//     no schema. The least this design's accept can do.
//   - floor-accept: the gateway's own HTTP surface (floor_accept.go) over
//     floor-sqlite's table: what an accept that stores the event and its
//     commands in one row, leaving the rest to later, would cost.
var floorKinds = []string{"floor-file", "floor-sqlite", "floor-store", "floor-accept"}

// loopback is the bench's allowlist for its sources.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}

// floorSecretEnv hands floor-accept the bench's signing secret (an
// environment variable, not a flag: process arguments are visible to all).
const floorSecretEnv = "STOREGATE_BENCH_FLOOR_SECRET"

// startFloor re-executes this binary as the floor server of kind.
func startFloor(ctx context.Context, dir, kind, secret string) (*server, error) {
	data := filepath.Join(dir, kind)
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	return startSelf(ctx, dir, kind, []string{floorSecretEnv + "=" + secret}, "-floor-listen", "-floor-kind", kind, "-floor-dir", data)
}

// serveFloor is the hidden -floor-listen mode.
func serveFloor(addr, kind, dir string) error {
	// The gateway's own collector setting (cmd/storegate), so the floors
	// differ from it only in the work per request.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var accept func(body []byte) error
	var app *fiber.App
	switch kind {
	case "floor-file":
		l, err := openAppendLog(filepath.Join(dir, "log"))
		if err != nil {
			return err
		}
		defer l.close()
		accept = l.append
	case "floor-sqlite":
		l, err := openSQLiteLog(ctx, filepath.Join(dir, "floor.db"))
		if err != nil {
			return err
		}
		defer l.close()
		accept = l.append
	case "floor-store":
		db, err := store.Open(ctx, engine.Config{DSN: "sqlite:" + filepath.Join(dir, "floor.db")})
		if err != nil {
			return err
		}
		defer db.Close()
		accept = func(body []byte) error { return acceptEvent(ctx, db, body) }
	case "floor-accept":
		l, err := openSQLiteLog(ctx, filepath.Join(dir, "floor.db"))
		if err != nil {
			return err
		}
		defer l.close()
		if app, err = acceptApp(l, os.Getenv(floorSecretEnv), loopback); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown floor %q", kind)
	}
	if app == nil {
		app = fiber.New(fiber.Config{DisableStartupMessage: true, BodyLimit: 64 << 10})
		app.Get("/readyz", func(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusOK) })
		app.Post("/*", func(c *fiber.Ctx) error {
			if err := accept(append([]byte(nil), c.Body()...)); err != nil {
				return c.SendStatus(fiber.StatusInternalServerError)
			}
			return c.SendStatus(fiber.StatusNoContent)
		})
	}
	go func() { <-ctx.Done(); app.ShutdownWithTimeout(5 * time.Second) }()
	return app.Listen(addr)
}

// acceptEvent stores the bench's order_paid as an event keyed by its order,
// with no command: what the gateway stores for it minus its command and grant.
func acceptEvent(ctx context.Context, db *store.DB, body []byte) error {
	var p struct {
		Order struct {
			ID int64 `json:"id"`
		} `json:"order"`
		User struct {
			ExternalID string `json:"external_id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return err
	}
	ev := storegate.Event{Source: "bench", Type: "order_paid", Key: "order." + strconv.FormatInt(p.Order.ID, 10),
		PlayerID: p.User.ExternalID, OrderRef: strconv.FormatInt(p.Order.ID, 10), Body: body, ReceivedAt: db.Now()}
	_, _, err := db.Accept(ctx, ev, nil, storegate.Answer{Status: fiber.StatusNoContent})
	return err
}

// openSQLiteLog is an appendLog whose batches are SQLite transactions.
func openSQLiteLog(ctx context.Context, path string) (*appendLog, error) {
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, "CREATE TABLE events (key TEXT PRIMARY KEY, body BLOB NOT NULL, commands BLOB)"); err != nil {
		db.Close()
		return nil, err
	}
	// Prepared once: the one connection keeps it, so each batch's
	// transaction reuses it instead of parsing the SQL again.
	insert, err := db.PrepareContext(ctx, "INSERT INTO events (key, body, commands) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
	if err != nil {
		db.Close()
		return nil, err
	}
	l := &appendLog{in: make(chan appendReq, 1024), done: make(chan struct{}), closeFn: func() error { insert.Close(); return db.Close() }}
	l.write = func(batch []appendReq) error {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		defer tx.Rollback()
		ins := tx.Stmt(insert)
		for _, r := range batch {
			key := r.key
			if key == "" {
				key = orderKey(r.body)
			}
			if _, err := ins.Exec(key, r.body, r.commands); err != nil {
				return err
			}
		}
		return tx.Commit()
	}
	go l.loop()
	return l, nil
}

// orderKey is the bench body's order id, found without a JSON parser: the
// floors do no more than they must.
func orderKey(body []byte) string {
	const at = `"order":{"id":`
	i := bytes.Index(body, []byte(at))
	if i < 0 {
		return string(body)
	}
	rest := body[i+len(at):]
	if j := bytes.IndexByte(rest, '}'); j >= 0 {
		return string(rest[:j])
	}
	return string(body)
}

// appendLog is a group committer: one goroutine writes whatever requests
// have arrived, durably, answers them, and starts over with what arrived
// meanwhile.
type appendLog struct {
	in      chan appendReq
	done    chan struct{}
	write   func([]appendReq) error // a batch, durably
	closeFn func() error
}

type appendReq struct {
	key      string // floor-sqlite's row key; empty: the body's order id
	body     []byte
	commands []byte // floor-accept's commands, stored with the event
	done     chan error
}

// appendLogSize is the ring's size: larger than a few seconds of bodies.
const appendLogSize = 64 << 20

// openAppendLog is an appendLog on a file written in full once at the start
// and then overwritten in a ring, as a database's log is, so a flush
// carries the data and no change of the file's size or blocks (fdatasync).
func openAppendLog(path string) (*appendLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < appendLogSize; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros, off); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	l := &appendLog{in: make(chan appendReq, 1024), done: make(chan struct{}), closeFn: f.Close}
	var buf []byte
	var off int64
	l.write = func(batch []appendReq) error {
		buf = buf[:0]
		for _, r := range batch {
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(r.body)))
			buf = append(buf, r.body...)
		}
		if off+int64(len(buf)) > appendLogSize {
			off = 0
		}
		if _, err := f.WriteAt(buf, off); err != nil {
			return err
		}
		off += int64(len(buf))
		return datasync(f)
	}
	go l.loop()
	return l, nil
}

func (l *appendLog) append(body []byte) error { return l.put(appendReq{body: body}) }

// put writes r with the next batch and waits until that batch is durable.
func (l *appendLog) put(r appendReq) error {
	r.done = make(chan error, 1)
	l.in <- r
	return <-r.done
}

func (l *appendLog) loop() {
	defer close(l.done)
	var batch []appendReq
	for r := range l.in {
		batch = append(batch[:0], r)
	more:
		for len(batch) < cap(l.in) {
			select {
			case r, ok := <-l.in:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		err := l.write(batch)
		for _, r := range batch {
			r.done <- err
		}
	}
}

func (l *appendLog) close() error {
	close(l.in)
	<-l.done
	return l.closeFn()
}
