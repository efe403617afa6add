// Package webhooks is all of storegate's Fiber code: the routes senders,
// support staff and operators call, one error handler, and the middleware
// that gives every request an id, a log line and a metric. Handlers reach the
// store, the ledger and the targets only through the small interfaces below.
package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/ledger"
	"storegate/mapping"
	"storegate/metrics"
	"storegate/schemas"
)

// Inbox stores accepted events with the commands they owe, exactly once.
type Inbox interface {
	Accept(ctx context.Context, ev storegate.Event, cmds []storegate.Command, answer storegate.Answer) (stored storegate.Answer, duplicate bool, err error)
	Link(ctx context.Context, source, orderID, transactionID string, answer []byte) ([]byte, error)
}

// Users answers whether a player exists, for one target.
type Users interface {
	UserExists(ctx context.Context, playerID string) (bool, error)
}

// PinCodes hands out game keys for Xsolla's get_pincode, for one target.
type PinCodes interface {
	PinCode(ctx context.Context, req storegate.PinCodeRequest) (string, error)
}

// Economy is the embedded ledger as support staff and game servers use it.
type Economy interface {
	Wallets(ctx context.Context, playerID string) ([]ledger.Wallet, error)
	Entitlements(ctx context.Context, playerID string, all bool) ([]ledger.Entitlement, error)
	History(ctx context.Context, playerID string, q ledger.HistoryQuery) ([]ledger.Entry, bool, error)
	Revocations(ctx context.Context, playerID string, q ledger.RevocationQuery) ([]ledger.Revocation, bool, error)
	Adjust(ctx context.Context, a ledger.Adjustment) (ledger.AdjustmentResult, error)
	Spend(ctx context.Context, s ledger.Spend) (ledger.SpendResult, error)
	Consume(ctx context.Context, c ledger.Consume) (ledger.ConsumeResult, error)
	UserAttributes(ctx context.Context, playerID string) (map[string]json.RawMessage, error)
	SetUserAttributes(ctx context.Context, playerID string, attrs map[string]json.RawMessage) error
}

// Pinger reports whether the store answers, for /readyz.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config is the HTTP surface's configuration. Zero fields take the defaults.
type Config struct {
	// BodyLimit caps every request body in bytes; a source may set a lower
	// limit of its own. Default 65536.
	BodyLimit int
	// AdminTokens are the bearer tokens accepted on /admin routes. With none,
	// every admin request is refused.
	AdminTokens []string
	// GameTokens are the bearer tokens of game servers (spend, consume).
	// With none, every game-server request is refused.
	GameTokens []string
	// TrustedProxies are the addresses of load balancers whose
	// X-Forwarded-For header is believed. Default none: the peer address is
	// the client.
	TrustedProxies []netip.Prefix
	// UserDeadline bounds a synchronous question to a target (does this user
	// exist?). Xsolla wants answers within 3 s. Default 2s.
	UserDeadline time.Duration
	// ReadTimeout bounds the reading of one request, headers and body, and
	// the wait for a new connection's first request: a client slower than
	// that gets 408 and the connection closes. Default 10s.
	ReadTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// XsollaSource is one configured Xsolla project.
type XsollaSource struct {
	Name string
	// Verifier checks the Authorization: Signature header.
	Verifier interface {
		Verify(header func(string) string, body []byte) error
	}
	// Target receives the source's commands and user checks.
	Target string
	// GrantOn is order_paid (default) or payment; see mapping.XsollaSource.
	GrantOn string
	// AllowIPs limits callers; empty allows any address.
	AllowIPs []netip.Prefix
	// BodyLimit caps the body in bytes; 0 uses Config.BodyLimit.
	BodyLimit int
	// LinkParameters are returned as custom_parameters when Xsolla links a
	// transaction (create_external_transaction). Optional.
	LinkParameters map[string]any
}

// Deps are what the server talks to.
type Deps struct {
	Inbox Inbox
	Users map[string]Users // by target name
	// Attributes are the targets that describe players to Xsolla, by
	// target name.
	Attributes map[string]Attributes
	// PinCodes are the targets that hand out game keys, by target name.
	PinCodes map[string]PinCodes
	Economy  Economy
	Ready    Pinger
	Catalog  *mapping.Catalog
	Schemas  *schemas.Set
	Metrics  *metrics.Metrics
	Log      *slog.Logger
	// Notify is called after commands were committed, to wake the dispatcher.
	Notify func()
	Xsolla []XsollaSource

	// DeadLetters lists, inspects, replays and discards dead letters.
	DeadLetters DeadLetters
	// Partners, Stores and FulfillOrders configure the distribution
	// partner, store-proxy and Fulfill Orders routes (partners.go,
	// stores.go, players.go); Orders is the store behind them and behind
	// order tracking.
	Partners      []PartnerSource
	Stores        []StoresSource
	FulfillOrders *FulfillOrders
	Orders        Orders
}

// Server is storegate's HTTP surface.
type Server struct {
	app      *fiber.App
	cfg      Config
	deps     Deps
	log      *slog.Logger
	validate *validator.Validate
	xsolla   map[string]*XsollaSource
	admin    [][32]byte // sha256 of each admin token
	game     [][32]byte // sha256 of each game-server token
	attrs    attributeLog
}

// New builds the Fiber app with every route.
func New(cfg Config, deps Deps) *fiber.App {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 64 << 10
	}
	if cfg.UserDeadline <= 0 {
		cfg.UserDeadline = 2 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Notify == nil {
		deps.Notify = func() {}
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Log,
		validate: newValidator(),
		xsolla:   map[string]*XsollaSource{}}
	limit := cfg.BodyLimit
	for i := range deps.Xsolla {
		src := &deps.Xsolla[i]
		if src.BodyLimit <= 0 || src.BodyLimit > cfg.BodyLimit {
			src.BodyLimit = cfg.BodyLimit
		}
		s.xsolla[src.Name] = src
	}
	s.admin = hashTokens(cfg.AdminTokens)
	s.game = hashTokens(cfg.GameTokens)

	app := fiber.New(fiber.Config{
		AppName:               "storegate",
		BodyLimit:             limit,
		ReadBufferSize:        readBuffer,
		ErrorHandler:          s.errorHandler,
		DisableStartupMessage: true,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           60 * time.Second,
	})
	s.app = app
	s.guard(app)
	app.Use(s.observe)
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", s.handleReady)
	app.Post("/webhooks/xsolla/:source", s.handleXsolla)
	s.partnerRoutes(app)
	s.storeRoutes(app)
	s.playerRoutes(app)

	admin := app.Group("/admin", s.requireAdmin)
	admin.Get("/v1/players/:playerId/wallets", s.handleWallets)
	admin.Get("/v1/players/:playerId/entitlements", s.handleEntitlements)
	admin.Get("/v1/players/:playerId/transactions", s.handleHistory)
	admin.Get("/v1/players/:playerId/revocations", s.handleRevocations)
	admin.Post("/v1/players/:playerId/wallets/:currency/adjustments", s.handleAdjustment)
	// Per route, not a group: other /v1/players routes have other callers.
	app.Post("/v1/players/:playerId/wallets/:currency/spend", s.requireGame, s.handleSpend)
	app.Post("/v1/players/:playerId/entitlements/:entitlementId/consume", s.requireGame, s.handleConsume)
	s.deadLetterRoutes(admin)
	admin.Get("/v1/players/:playerId/orders", s.handleOrders)
	admin.Get("/v1/players/:playerId/attributes", s.handleAttributes)
	admin.Put("/v1/players/:playerId/attributes", s.handleSetAttributes)
	return app
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
		id = randomID()
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
	s.log.Log(c.UserContext(), level, "request", "request_id", requestID(c), "method", method, "route", route,
		"source", source, "type", typ, "status", status, "duration_ms", float64(s.cfg.Now().Sub(start).Microseconds())/1000)
}

const (
	localRequestID = "request_id"
	localSource    = "source"
	localType      = "type"
	// localStatuses overrides statusOf for one sender's routes.
	localStatuses = "statuses"
)

// randomID is 16 random hex digits.
func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func requestID(c *fiber.Ctx) string {
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

// clientIP is the caller's address: the peer, or, when the peer is a trusted
// proxy, the right-most X-Forwarded-For address that is not a trusted proxy.
// The header's lines count as one list in their order: a proxy may add a
// line of its own (HAProxy's option forwardfor does) rather than extend the
// caller's, so the address it saw is on the last line, not the first. An
// entry that is not a bare address, where the client should be, yields no
// address: it matches no allowlist.
func (s *Server) clientIP(c *fiber.Ctx) netip.Addr {
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer
	}
	var hops []string
	for _, line := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		hops = append(hops, strings.Split(string(line), ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		addr, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}
		}
		addr = addr.Unmap()
		if !s.trusted(addr) {
			return addr
		}
	}
	return peer
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func allowed(list []netip.Prefix, a netip.Addr) bool {
	if len(list) == 0 {
		return true
	}
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// newValidator reports fields by their JSON names, as the answers do.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	return v
}

// validationError turns the validator's complaint into INVALID_PARAMETER
// naming each field as a dotted JSON path ("items.0.sku").
func validationError(err error) error {
	var ve validator.ValidationErrors
	if !errors.As(err, &ve) {
		return storegate.FieldError("payload is incomplete")
	}
	var fields []string
	for _, fe := range ve {
		path := fe.Namespace()
		if _, rest, ok := strings.Cut(path, "."); ok {
			path = rest // drop the root struct's name
		}
		path = strings.NewReplacer("[", ".", "]", "").Replace(path)
		fields = append(fields, path)
	}
	return storegate.FieldError("payload is incomplete: "+strings.Join(fields, ", ")+" missing or out of range", fields...)
}
