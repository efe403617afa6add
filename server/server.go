// Package server is the HTTP machinery every storegate route shares: the
// Fiber app, a request id, a log line and a metric per request, the edge
// guard, the one mapping from the error vocabulary to HTTP, /healthz and
// /readyz, bearer-token checks, the one body decoder and JSON answers.
// Package webhooks mounts the senders' routes on it and package api the
// routes people and games call, so every error still becomes HTTP here.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/metrics"
	"storegate/schemas"
)

// Pinger reports whether the store answers, for /readyz.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config is the HTTP machinery's configuration. Zero fields take the
// defaults.
type Config struct {
	// BodyLimit caps every request body in bytes; a source may set a lower
	// limit of its own. Default 65536.
	BodyLimit int
	// TrustedProxies are the addresses of load balancers whose
	// X-Forwarded-For header is believed. Default none: the peer address is
	// the client.
	TrustedProxies []netip.Prefix
	// ReadTimeout bounds the reading of one request, headers and body, and
	// the wait for a new connection's first request: a client slower than
	// that gets 408 and the connection closes. Default 10s.
	ReadTimeout time.Duration
	// Now is the clock of every route. Default time.Now.
	Now func() time.Time
}

// WithDefaults is c with every zero field at its default.
func (c Config) WithDefaults() Config {
	if c.BodyLimit <= 0 {
		c.BodyLimit = 64 << 10
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Deps are what the machinery talks to.
type Deps struct {
	// Ready answers /readyz; nil is always ready.
	Ready   Pinger
	Schemas *schemas.Set
	// Metrics counts requests; nil counts nothing.
	Metrics *metrics.Metrics
	// Log takes every request's line. Default: discarded.
	Log *slog.Logger
}

// Server is the Fiber app every route is mounted on, with what the routes
// share.
type Server struct {
	app  *fiber.App
	cfg  Config
	deps Deps
	log  *slog.Logger
}

// New builds the Fiber app with the edge guard, the request middleware,
// /healthz and /readyz; the routes are mounted on App after.
func New(cfg Config, deps Deps) *Server {
	cfg = cfg.WithDefaults()
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Log}
	s.app = fiber.New(fiber.Config{
		AppName:               "storegate",
		BodyLimit:             cfg.BodyLimit,
		ReadBufferSize:        readBuffer,
		ErrorHandler:          s.errorHandler,
		DisableStartupMessage: true,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           60 * time.Second,
	})
	s.guard(s.app)
	s.app.Use(s.observe)
	s.app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	s.app.Get("/readyz", s.handleReady)
	return s
}

// App is the Fiber app the routes are mounted on and that serves them.
func (s *Server) App() *fiber.App { return s.app }

// Now is the routes' clock.
func (s *Server) Now() time.Time { return s.cfg.Now() }

// Clock is the routes' clock as a function, for what keeps one.
func (s *Server) Clock() func() time.Time { return s.cfg.Now }

// Log is the routes' logger.
func (s *Server) Log() *slog.Logger { return s.log }

// Metrics are the collectors, or nil.
func (s *Server) Metrics() *metrics.Metrics { return s.deps.Metrics }

// Schemas are the payload and answer schemas.
func (s *Server) Schemas() *schemas.Set { return s.deps.Schemas }

// SourceLimit is a source's body limit: its own when lower than the
// server's, else the server's.
func (s *Server) SourceLimit(limit int) int {
	if limit <= 0 || limit > s.cfg.BodyLimit {
		return s.cfg.BodyLimit
	}
	return limit
}

// observe gives the request an id, turns a handler's error into its answer
// here (so the log line and metric see the final status), and logs one line.
// Sender requests are counted; refusals before any route too (edge.go).
func (s *Server) observe(c *fiber.Ctx) error {
	start := s.begin(c)
	if err := c.Next(); err != nil {
		if err := s.errorHandler(c, err); err != nil {
			return err
		}
	}
	source, _ := c.Locals(localSource).(string)
	s.finish(c, start, c.Method(), c.Route().Path, source != "")
	return nil
}

// begin gives the request its id: the caller's X-Request-ID when it is
// sane, else a new one.
func (s *Server) begin(c *fiber.Ctx) time.Time {
	id := c.Get(fiber.HeaderXRequestID)
	if !saneID(id) {
		id = RandomID()
	}
	c.Locals(localRequestID, id)
	c.Set(fiber.HeaderXRequestID, id)
	return s.cfg.Now()
}

// finish counts the answered request in storegate_requests_total when count
// is set, and logs its line: at ERROR for a 5xx, else at INFO.
func (s *Server) finish(c *fiber.Ctx, start time.Time, method, route string, count bool) {
	status := c.Response().StatusCode()
	source, _ := c.Locals(localSource).(string)
	typ, _ := c.Locals(localType).(string)
	if count && s.deps.Metrics != nil {
		s.deps.Metrics.Request(source, typ, status)
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	if !s.log.Enabled(c.UserContext(), level) {
		return // skip building the attributes, on every request
	}
	s.log.Log(c.UserContext(), level, "request", "request_id", RequestID(c), "method", method, "route", route,
		"source", source, "type", typ, "status", status, "duration_ms", float64(s.cfg.Now().Sub(start).Microseconds())/1000)
}

const (
	localRequestID = "request_id"
	localSource    = "source"
	localType      = "type"
	localStatuses  = "statuses"
	localErrorPage = "error_page"
)

// SetSource names the request's sender: its log line and metric carry the
// name, and a request with a source is counted.
func SetSource(c *fiber.Ctx, source string) { c.Locals(localSource, source) }

// SetType names what the request is (a notification type, a route's
// purpose) in its log line and metric.
func SetType(c *fiber.Ctx, typ string) { c.Locals(localType, typ) }

// SetStatuses overrides the one mapping from codes to statuses for this
// request, where a sender's contract differs from it.
func SetStatuses(c *fiber.Ctx, statuses map[storegate.Code]int) { c.Locals(localStatuses, statuses) }

// RandomID is 16 random hex digits.
func RandomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RequestID is the request's id, for log lines about it.
func RequestID(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}

// saneID accepts a caller's request id only if it is short and plain, so it
// cannot inject anything into logs.
func saneID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func (s *Server) handleReady(c *fiber.Ctx) error {
	if s.deps.Ready == nil {
		return c.JSON(fiber.Map{"status": "ready"})
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), time.Second)
	defer cancel()
	if err := s.deps.Ready.Ping(ctx); err != nil {
		return storegate.Unavailable(fmt.Errorf("readiness: %w", err))
	}
	return c.JSON(fiber.Map{"status": "ready"})
}
