// Package api holds the routes people and games call: support staff's
// admin routes (wallets, entitlements, transactions, revocations,
// adjustments, attributes, orders, dead letters), game servers' spend and
// consume, and game clients' Fulfill Orders. Handlers reach the ledger and
// the store only through the small interfaces below; the Fiber app, the
// error answers and the request middleware are package server's.
package api

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/ledger"
	"storegate/mapping"
	"storegate/server"
)

// Economy is the embedded ledger as support staff and game servers use it.
type Economy interface {
	Wallets(ctx context.Context, playerID string) ([]ledger.Wallet, error)
	Entitlements(ctx context.Context, playerID string, all bool) ([]ledger.Entitlement, error)
	History(ctx context.Context, playerID string, q ledger.HistoryQuery) ([]ledger.Entry, bool, error)
	Revocations(ctx context.Context, playerID string, q ledger.RevocationQuery) ([]ledger.Revocation, bool, error)
	AllRevocations(ctx context.Context, q ledger.RevocationQuery) ([]ledger.Revocation, bool, error)
	Revocation(ctx context.Context, id string) (ledger.Revocation, bool, error)
	Adjust(ctx context.Context, a ledger.Adjustment) (ledger.AdjustmentResult, error)
	Spend(ctx context.Context, s ledger.Spend) (ledger.SpendResult, error)
	Consume(ctx context.Context, c ledger.Consume) (ledger.ConsumeResult, error)
	UserAttributes(ctx context.Context, playerID string) (map[string]json.RawMessage, error)
	SetUserAttributes(ctx context.Context, playerID string, attrs map[string]json.RawMessage) error
}

// Inbox stores the orders Fulfill Orders pulls, with the commands they
// owe, exactly once.
type Inbox interface {
	Accept(ctx context.Context, ev storegate.Event, cmds []storegate.Command, answer storegate.Answer) (stored storegate.Answer, duplicate bool, err error)
}

// Config is the configuration of the routes people and games call.
type Config struct {
	// AdminTokens are the bearer tokens accepted on /admin routes. With none,
	// every admin request is refused.
	AdminTokens []string
	// GameTokens are the bearer tokens of game servers (spend, consume).
	// With none, every game-server request is refused.
	GameTokens []string
}

// Deps are what the routes talk to. A nil Economy, DeadLetters, Orders,
// FulfillOrders or Keys answers its routes 404.
type Deps struct {
	Economy     Economy
	DeadLetters DeadLetters
	// Orders is the store behind order tracking and Fulfill Orders.
	Orders        Orders
	FulfillOrders *FulfillOrders
	Inbox         Inbox
	Catalog       *mapping.Catalog
	// Keys are the game keys' pools (the embedded ledger); nil answers
	// their routes 404.
	Keys KeyPools
	// Notify is called after commands were committed, to wake the dispatcher.
	Notify func()
}

// handlers are the routes with what they share.
type handlers struct {
	srv   *server.Server
	deps  Deps
	log   *slog.Logger
	admin [][32]byte // sha256 of each admin token
	game  [][32]byte // sha256 of each game-server token
}

// Mount adds the admin, game-server and game-client routes to srv's app.
func Mount(srv *server.Server, cfg Config, deps Deps) {
	if deps.Notify == nil {
		deps.Notify = func() {}
	}
	h := &handlers{srv: srv, deps: deps, log: srv.Log(),
		admin: server.HashTokens(cfg.AdminTokens), game: server.HashTokens(cfg.GameTokens)}
	app := srv.App()
	h.playerRoutes(app)

	admin := app.Group("/admin", h.requireAdmin)
	admin.Get("/v1/players/:playerId/wallets", h.handleWallets)
	admin.Get("/v1/players/:playerId/entitlements", h.handleEntitlements)
	admin.Get("/v1/players/:playerId/transactions", h.handleHistory)
	admin.Get("/v1/players/:playerId/revocations", h.handleRevocations)
	admin.Get("/v1/revocations", h.handleAllRevocations)
	admin.Get("/v1/revocations/:id", h.handleRevocation)
	admin.Post("/v1/players/:playerId/wallets/:currency/adjustments", h.handleAdjustment)
	// Per route, not a group: other /v1/players routes have other callers.
	app.Post("/v1/players/:playerId/wallets/:currency/spend", h.requireGame, h.handleSpend)
	app.Post("/v1/players/:playerId/entitlements/:entitlementId/consume", h.requireGame, h.handleConsume)
	h.deadLetterRoutes(admin)
	h.keyRoutes(admin)
	admin.Get("/v1/players/:playerId/orders", h.handleOrders)
	admin.Get("/v1/players/:playerId/attributes", h.handleAttributes)
	admin.Put("/v1/players/:playerId/attributes", h.handleSetAttributes)
}

func (h *handlers) requireAdmin(c *fiber.Ctx) error {
	if !server.CheckBearer(c.Get(fiber.HeaderAuthorization), h.admin) {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="storegate-admin"`)
		return storegate.Errorf(storegate.CodeUnauthorized, "admin routes need Authorization: Bearer <admin token>")
	}
	return c.Next()
}

// requireGame admits game servers: a bearer token from Config.GameTokens,
// compared in constant time like the admin tokens.
func (h *handlers) requireGame(c *fiber.Ctx) error {
	server.SetSource(c, "game")
	if !server.CheckBearer(c.Get(fiber.HeaderAuthorization), h.game) {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="storegate-game"`)
		return storegate.Errorf(storegate.CodeUnauthorized, "game-server routes need Authorization: Bearer <game token>")
	}
	return c.Next()
}
