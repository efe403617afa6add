// Package webhooks holds the routes of the inbound senders: Xsolla,
// distribution partners and studios' store proxies, one file per kind.
// Handlers reach the store and the targets only through the small
// interfaces below; the Fiber app, the error answers and the request
// middleware are package server's.
package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/mapping"
	"storegate/metrics"
	"storegate/server"
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

// Config is the senders' routes' configuration. Zero fields take the
// defaults.
type Config struct {
	// UserDeadline bounds a synchronous question to a target (does this user
	// exist?). Xsolla wants answers within 3 s. Default 2s.
	UserDeadline time.Duration
}

// WithDefaults is c with every zero field at its default.
func (c Config) WithDefaults() Config {
	if c.UserDeadline <= 0 {
		c.UserDeadline = 2 * time.Second
	}
	return c
}

// Deps are what the senders' routes talk to.
type Deps struct {
	Inbox Inbox
	Users map[string]Users // by target name
	// Attributes are the targets that describe players to Xsolla, by
	// target name.
	Attributes map[string]Attributes
	// PinCodes are the targets that hand out game keys, by target name.
	PinCodes map[string]PinCodes
	Catalog  *mapping.Catalog
	// Notify is called after commands were committed, to wake the dispatcher.
	Notify func()
	Xsolla []XsollaSource
	// Partners and Stores configure the distribution partner and
	// store-proxy routes (partners.go, stores.go); Orders keeps partners'
	// orders, and Carts their carts (without it, no cart routes).
	Partners []PartnerSource
	Stores   []StoresSource
	Orders   PartnerOrders
	Carts    PartnerCarts
	// Keys are the targets that hand out game keys with their grants, by
	// target name: partners' orders check their pools and answer their
	// keys.
	Keys map[string]GameKeys
	// Wallets are the targets that keep players' wallets, by target name:
	// partners' orders in a virtual currency check the balance there.
	Wallets map[string]Wallets
}

// handlers are the senders' routes with what they share.
type handlers struct {
	srv      *server.Server
	cfg      Config
	deps     Deps
	log      *slog.Logger
	metrics  *metrics.Metrics
	validate *validator.Validate
	xsolla   map[string]*XsollaSource
	attrs    attributeLog
}

// Mount adds every sender's route to srv's app.
func Mount(srv *server.Server, cfg Config, deps Deps) {
	cfg = cfg.WithDefaults()
	if deps.Notify == nil {
		deps.Notify = func() {}
	}
	h := &handlers{srv: srv, cfg: cfg, deps: deps, log: srv.Log(), metrics: srv.Metrics(),
		validate: newValidator(), xsolla: map[string]*XsollaSource{}}
	for i := range deps.Xsolla {
		src := &deps.Xsolla[i]
		src.prepare(srv, xsollaKind)
		h.xsolla[src.Name] = src
	}
	app := srv.App()
	app.Post("/webhooks/xsolla/:source", h.handleXsolla)
	h.partnerRoutes(app)
	h.storeRoutes(app)
}

// userExists asks the source's target within the deadline.
func (h *handlers) userExists(ctx context.Context, target, playerID string) (bool, error) {
	u := h.deps.Users[target]
	if u == nil {
		return false, errors.ErrUnsupported
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.UserDeadline)
	defer cancel()
	return u.UserExists(ctx, playerID)
}

// checkGrantee refuses a plan that grants to a player the source's target
// says does not exist: a definite "no such player" is a permanent reject.
// A target that cannot answer in time does not stop a paid order from being
// queued: the grant will wait for the target like any other command. field
// names the player in the payload.
func (h *handlers) checkGrantee(c *fiber.Ctx, src *Source, plan mapping.Plan, field string) error {
	if !grants(plan.Commands) {
		return nil
	}
	exists, err := h.userExists(c.UserContext(), src.Target, plan.PlayerID)
	if err == nil && !exists {
		return &storegate.Error{Code: storegate.CodeInvalidUser, Message: "no such player", Fields: []string{field}}
	}
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		h.log.Warn("user check unavailable; queuing the order anyway", "request_id", server.RequestID(c), "source", src.Name, "err", err)
	}
	return nil
}

func grants(cmds []storegate.Command) bool {
	for _, c := range cmds {
		if c.Kind == storegate.KindFulfill {
			return true
		}
	}
	return false
}

// accept stores an event with its commands and sends the stored answer:
// ans, or for a duplicate the first answer again.
func (h *handlers) accept(c *fiber.Ctx, ev storegate.Event, cmds []storegate.Command, ans storegate.Answer) error {
	stored, dup, err := h.deps.Inbox.Accept(c.UserContext(), ev, cmds, ans)
	if err != nil {
		// Not committed, or not known to be: the sender must retry. Never 2xx.
		return storegate.Unavailable(err)
	}
	if dup && h.metrics != nil {
		h.metrics.Duplicate(ev.Source, ev.Type)
	}
	if !dup && len(cmds) > 0 {
		h.deps.Notify()
	}
	return server.Answer(c, stored)
}
