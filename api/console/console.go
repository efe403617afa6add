// Package console is the support console: HTML pages under /console/,
// served by the gateway itself, for support staff signed in with an admin
// token. Templates and the style sheet are embedded; the pages use no
// JavaScript, so every page reads and every form works without it.
//
// Every change a page makes goes through the same operations the admin API
// uses (package api), so the console and the API cannot drift apart. Errors
// get their status from package server's one mapping and are written as a
// page by errorPage.
package console

import (
	"context"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/ledger"
	"storegate/mapping"
	"storegate/server"
	"storegate/store"
)

// Config is the console's configuration. Zero fields take the defaults.
type Config struct {
	// Disabled turns the console off: nothing is served under /console/.
	// Default false (on).
	Disabled bool
	// AdminTokens are the tokens that sign in: the admin API's. With none,
	// nobody can sign in.
	AdminTokens []string
	// SessionTTL is how long a session lasts from sign-in, however busy.
	// Default 8h.
	SessionTTL time.Duration
	// IdleTimeout ends a session no page was asked of for that long.
	// Default 30m.
	IdleTimeout time.Duration
	// SignInAttempts is how many failed sign-ins one address may make per
	// SignInWindow before its attempts are refused until the window ends.
	// Default 5.
	SignInAttempts int
	// SignInWindow is the period SignInAttempts counts over. Default 15m.
	SignInWindow time.Duration
	// SecureCookies marks the session cookie Secure on every answer, for a
	// gateway behind a proxy that ends TLS and does not say so. Default
	// false: Secure when the request came over TLS, or says it did in
	// X-Forwarded-Proto.
	SecureCookies bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// WithDefaults is c with every zero field at its default.
func (c Config) WithDefaults() Config {
	if c.SessionTTL <= 0 {
		c.SessionTTL = 8 * time.Hour
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Minute
	}
	if c.SignInAttempts <= 0 {
		c.SignInAttempts = 5
	}
	if c.SignInWindow <= 0 {
		c.SignInWindow = 15 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Economy is the embedded ledger as the console reads and adjusts it.
type Economy interface {
	Wallets(ctx context.Context, playerID string) ([]ledger.Wallet, error)
	Entitlements(ctx context.Context, playerID string, all bool) ([]ledger.Entitlement, error)
	History(ctx context.Context, playerID string, q ledger.HistoryQuery) ([]ledger.Entry, bool, error)
	Revocations(ctx context.Context, playerID string, q ledger.RevocationQuery) ([]ledger.Revocation, bool, error)
	Adjust(ctx context.Context, a ledger.Adjustment) (ledger.AdjustmentResult, error)
}

// Orders reads a player's tracked orders with their histories.
type Orders interface {
	PlayerOrders(ctx context.Context, playerID string, limit int) ([]storegate.OrderRecord, error)
}

// Lookups are the store's answers to a search.
type Lookups interface {
	Commands(ctx context.Context, ids []string) ([]store.Match, error)
	PlayerSeen(ctx context.Context, playerID string) (bool, error)
	Sources(ctx context.Context) ([]string, error)
}

// DeadLetters is the outbox as support staff repair it.
type DeadLetters interface {
	DeadLetters(ctx context.Context, f store.DeadLetterFilter) (store.DeadLetterPage, error)
	DeadLetter(ctx context.Context, id string) (store.DeadLetterDetail, error)
	Replay(ctx context.Context, f store.DeadLetterFilter, actor string) ([]string, error)
	Discard(ctx context.Context, id, reason, actor string) error
}

// Deps are what the console reads and changes. A nil Economy hides the
// wallets, entitlements, revocations and ledger; a nil Keys hides game keys.
type Deps struct {
	Economy     Economy
	Orders      Orders
	Lookups     Lookups
	DeadLetters DeadLetters
	// Notify wakes the dispatcher after a replay.
	Notify func()
	// Health reports the sources and targets (HealthFeed); nil hides it.
	Health Health
	// Keys lists the game keys players were given; nil hides the section.
	Keys    KeySource
	Catalog *mapping.Catalog
}

// KeySource lists the game keys a player was given, newest first, revoked
// ones included (the embedded ledger). The page shows a key's last four
// characters only: a key is worth money.
type KeySource interface {
	PlayerKeys(ctx context.Context, playerID string) ([]storegate.GameKey, error)
}

// handlers are the console's routes with what they share.
type handlers struct {
	srv      *server.Server
	cfg      Config
	deps     Deps
	log      *slog.Logger
	tokens   [][32]byte
	sessions *sessions
	limiter  *limiter
	pages    pages
}

// Mount adds the console's routes under /console/ to srv's app, unless
// the console is disabled.
func Mount(srv *server.Server, cfg Config, deps Deps) {
	cfg = cfg.WithDefaults()
	if cfg.Disabled {
		return
	}
	if deps.Notify == nil {
		deps.Notify = func() {}
	}
	h := &handlers{srv: srv, cfg: cfg, deps: deps, log: srv.Log(), tokens: server.HashTokens(cfg.AdminTokens),
		sessions: newSessions(cfg), limiter: newLimiter(cfg.SignInAttempts, cfg.SignInWindow, cfg.Now), pages: loadPages()}
	g := srv.App().Group("/console", h.guard)
	g.Get("/assets/console.css", h.handleCSS)
	g.Get("/login", h.handleLoginForm)
	g.Post("/login", h.handleSignIn)
	g.Post("/logout", h.handleSignOut)
	g.Get("/", h.handleHome)
	g.Get("/search", h.handleSearch)
	g.Get("/players/:playerId", h.handlePlayer)
	g.Get("/players/:playerId/adjust", h.handleAdjustForm)
	g.Post("/players/:playerId/adjust", h.handleAdjust)
	g.Get("/deadletters", h.handleDeadLetters)
	g.Get("/deadletters/:id", h.handleDeadLetter)
	g.Get("/deadletters/:id/replay", h.handleReplayForm)
	g.Post("/deadletters/:id/replay", h.handleReplay)
	g.Get("/deadletters/:id/discard", h.handleDiscardForm)
	g.Post("/deadletters/:id/discard", h.handleDiscard)
	g.Get("/health", h.handleHealth)
}

// guard runs before every console route: the headers every page carries,
// errors as pages, and a session (with the form's CSRF token on a POST) for
// everything but the sign-in page and the style sheet.
func (h *handlers) guard(c *fiber.Ctx) error {
	server.SetErrorPage(c, h.errorPage)
	securityHeaders(c)
	if public(c.Path()) {
		return c.Next()
	}
	s := h.sessions.get(c.Cookies(sessionCookie))
	if s == nil {
		return c.Redirect(loginPath, fiber.StatusSeeOther)
	}
	c.Locals(localSession, s)
	if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead && !s.checkCSRF(c.FormValue(csrfField)) {
		h.log.Warn("console form refused: wrong CSRF token", "request_id", server.RequestID(c), "operator", s.operator, "path", c.Path())
		return errForged
	}
	return c.Next()
}

var errForged = storegate.Errorf(storegate.CodeForbidden, "this form is not one the console gave you (its security token is missing or stale): nothing was changed; go back, reload the page and try again")

const (
	loginPath    = "/console/login"
	localSession = "console_session"
)

// public are the paths served without a session: the sign-in form and the
// style sheet, which hold nothing about anyone.
func public(path string) bool {
	return path == loginPath || path == "/console/assets/console.css"
}

// securityHeaders: no script may run, nothing loads from elsewhere, no
// page may be framed, and no page is cached or sends a Referer.
func securityHeaders(c *fiber.Ctx) {
	c.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderCacheControl, "no-store")
}

func current(c *fiber.Ctx) *session {
	s, _ := c.Locals(localSession).(*session)
	return s
}
