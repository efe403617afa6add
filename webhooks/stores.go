package webhooks

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/mapping"
	"storegate/server"
)

// Studios proxy their Steam, Epic, Xbox, PlayStation and Twitch orders,
// refunds and chargebacks to POST /stores/{source}/events, signed with
// Standard Webhooks. The answer acknowledges that the event is stored; the
// grant or claw-back happens downstream.

// StoresSource is one configured store-proxy source (a studio's proxy).
type StoresSource struct {
	Name   string
	Target string
	// Verifier checks the Standard Webhooks signature. Required.
	Verifier interface {
		Verify(header func(string) string, body []byte) error
	}
	// Platforms are the store platforms this source may send ("steam",
	// "epic", ...). Empty: all of them.
	Platforms []string
	// AllowIPs limits callers; empty allows any address (the signature is
	// the control).
	AllowIPs []netip.Prefix
	// BodyLimit caps the body in bytes; 0 uses the server's limit.
	BodyLimit int
}

type storesAPI struct {
	*handlers
	sources map[string]*StoresSource
}

func (h *handlers) storeRoutes(app *fiber.App) {
	a := &storesAPI{handlers: h, sources: map[string]*StoresSource{}}
	for i := range h.deps.Stores {
		src := &h.deps.Stores[i]
		src.BodyLimit = h.srv.SourceLimit(src.BodyLimit)
		a.sources[src.Name] = src
	}
	app.Post("/stores/:source/events", a.handleEvent)
}

// handleEvent checks, each refusal storing nothing: source (404), caller
// address (403), size (413), signature (401), content type (415), the
// platform's schema (400), products in the catalog and the player (400).
func (a *storesAPI) handleEvent(c *fiber.Ctx) error {
	src := a.sources[c.Params("source")]
	if src == nil {
		return storegate.Errorf(storegate.CodeNotFound, "unknown source")
	}
	if err := a.admit(c, src.Name, src.AllowIPs, src.BodyLimit); err != nil {
		return err
	}
	if err := a.verifyStandard(c, src.Name, src.Verifier); err != nil {
		return err
	}
	if !server.IsJSON(c.Get(fiber.HeaderContentType)) {
		return storegate.Errorf(storegate.CodeUnsupportedMedia, "Content-Type must be application/json")
	}
	body := bytes.Clone(c.BodyRaw())
	ev, err := mapping.ReadStoreEvent(a.srv.Schemas(), body, "")
	if err != nil {
		return err
	}
	server.SetType(c, ev.Type)
	if len(src.Platforms) > 0 && !slices.Contains(src.Platforms, ev.Platform) {
		return storegate.FieldError("platform "+ev.Platform+" is not enabled for this source", "platform")
	}
	msrc := mapping.StoreSource{Name: src.Name, Target: src.Target}
	plan, err := mapping.Store(msrc, ev, a.deps.Catalog, a.srv.Now())
	if err != nil {
		return err
	}
	if grants(plan.Commands) {
		exists, err := a.userExists(c.UserContext(), src.Target, plan.PlayerID)
		if err == nil && !exists {
			return &storegate.Error{Code: storegate.CodeInvalidUser, Message: "no such player", Fields: []string{"player_id"}}
		}
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			a.log.Warn("user check unavailable; queuing the order anyway", "request_id", server.RequestID(c), "source", src.Name, "err", err)
		}
	}
	stored, dup, err := a.deps.Inbox.Accept(c.UserContext(), plan.Event(src.Name, ev.Type, body, a.srv.Now()), plan.Commands,
		mapping.StoreAnswer(ev, plan))
	if err != nil {
		return storegate.Unavailable(err)
	}
	if dup && a.metrics != nil {
		a.metrics.Duplicate(src.Name, ev.Type)
	}
	if !dup && len(plan.Commands) > 0 {
		a.deps.Notify()
	}
	return server.Answer(c, stored)
}

// admit runs the checks every sender's route starts with, each refusing
// with nothing stored: the caller's address (403; an empty list allows any)
// and the body's size (413).
func (h *handlers) admit(c *fiber.Ctx, source string, allow []netip.Prefix, limit int) error {
	server.SetSource(c, source)
	if !server.Allowed(allow, h.srv.ClientIP(c)) {
		return storegate.Errorf(storegate.CodeInvalidClientIP, "caller address is not allowed for this source")
	}
	if len(c.BodyRaw()) > limit {
		return storegate.Errorf(storegate.CodeTooLarge, "request body is larger than %d bytes", limit)
	}
	return nil
}

// verifyStandard checks a Standard Webhooks signature over the raw body.
func (h *handlers) verifyStandard(c *fiber.Ctx, source string, v interface {
	Verify(header func(string) string, body []byte) error
}) error {
	if err := v.Verify(header(c), c.BodyRaw()); err != nil {
		if h.metrics != nil {
			h.metrics.SignatureFailure(source)
		}
		return storegate.Errorf(storegate.CodeInvalidSignature, "%s", standardProblem(err))
	}
	return nil
}
