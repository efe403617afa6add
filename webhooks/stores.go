package webhooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/mapping"
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
	// BodyLimit caps the body in bytes; 0 uses Config.BodyLimit.
	BodyLimit int
}

type storesAPI struct {
	*Server
	sources map[string]*StoresSource
}

func (s *Server) storeRoutes(app *fiber.App) {
	a := &storesAPI{Server: s, sources: map[string]*StoresSource{}}
	for i := range s.deps.Stores {
		src := &s.deps.Stores[i]
		src.BodyLimit = s.sourceLimit(src.BodyLimit)
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
	if !isJSON(c.Get(fiber.HeaderContentType)) {
		return storegate.Errorf(storegate.CodeUnsupportedMedia, "Content-Type must be application/json")
	}
	body := bytes.Clone(c.BodyRaw())
	ev, err := a.readStoreEvent(body, "")
	if err != nil {
		return err
	}
	c.Locals(localType, ev.Type)
	if len(src.Platforms) > 0 && !slices.Contains(src.Platforms, ev.Platform) {
		return storegate.FieldError("platform "+ev.Platform+" is not enabled for this source", "platform")
	}
	msrc := mapping.StoreSource{Name: src.Name, Target: src.Target}
	plan, err := mapping.Store(msrc, ev, a.deps.Catalog, a.cfg.Now())
	if err != nil {
		return err
	}
	if grants(plan.Commands) {
		exists, err := a.userExists(c.UserContext(), src.Target, plan.PlayerID)
		if err == nil && !exists {
			return &storegate.Error{Code: storegate.CodeInvalidUser, Message: "no such player", Fields: []string{"player_id"}}
		}
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			a.log.Warn("user check unavailable; queuing the order anyway", "request_id", requestID(c), "source", src.Name, "err", err)
		}
	}
	stored, dup, err := a.deps.Inbox.Accept(c.UserContext(), storeEvent(src.Name, ev, plan, body, a.cfg.Now()), plan.Commands,
		storeAnswer(ev, plan))
	if err != nil {
		return storegate.Unavailable(err)
	}
	if dup && a.deps.Metrics != nil {
		a.deps.Metrics.Duplicate(src.Name, ev.Type)
	}
	if !dup && len(plan.Commands) > 0 {
		a.deps.Notify()
	}
	return answer(c, stored)
}

// readStoreEvent validates a store event against its platform's schema and
// decodes it. want, when set, is the platform the event must be for.
func (s *Server) readStoreEvent(body []byte, want string) (*mapping.StoreEvent, error) {
	var head struct {
		Platform string `json:"platform"`
	}
	if err := s.deps.Schemas.Decode("stores/event", body, &head); err != nil {
		return nil, err
	}
	if want != "" && head.Platform != want {
		return nil, storegate.FieldError("the order is for platform "+head.Platform+", not "+want, "platform")
	}
	var ev mapping.StoreEvent
	if err := s.deps.Schemas.Decode("stores/"+head.Platform, body, &ev); err != nil {
		return nil, err
	}
	return &ev, nil
}

func storeEvent(source string, ev *mapping.StoreEvent, plan mapping.Plan, body []byte, now time.Time) storegate.Event {
	return storegate.Event{Source: source, Type: ev.Type, Key: plan.Key, PlayerID: plan.PlayerID, OrderRef: plan.OrderRef,
		Body: body, ReceivedAt: now, Notes: plan.Notes}
}

// Effects of a store event, as answered.
const (
	effectGrant    = "grant"
	effectClawBack = "claw_back"
	effectRecord   = "record"
	effectRegrant  = "regrant"
)

// storeEffect is what a store event's plan does downstream.
func storeEffect(plan mapping.Plan) string {
	switch {
	case len(plan.Commands) == 0:
		return effectRecord
	case plan.Commands[len(plan.Commands)-1].Order != "":
		return effectRegrant
	case plan.Commands[0].Kind == storegate.KindRevoke:
		return effectClawBack
	}
	return effectGrant
}

// planOrder is the order a plan is about: its transaction id.
func planOrder(plan mapping.Plan) string {
	if len(plan.Commands) > 0 {
		return storegate.OrderOf(plan.Commands[0])
	}
	if len(plan.Notes) > 0 {
		return plan.Notes[0].Order
	}
	return ""
}

// storeAnswer is what a store event is answered, stored with it so a repeat
// gets the same answer.
func storeAnswer(ev *mapping.StoreEvent, plan mapping.Plan) storegate.Answer {
	body, _ := json.Marshal(fiber.Map{"status": "accepted", "event": ev.Type, "order_ref": plan.OrderRef,
		"transaction_id": planOrder(plan), "effect": storeEffect(plan)})
	return storegate.Answer{Status: fiber.StatusOK, Body: body}
}

// sourceLimit is a source's body limit: its own when lower than the
// server's, else the server's.
func (s *Server) sourceLimit(limit int) int {
	if limit <= 0 || limit > s.cfg.BodyLimit {
		return s.cfg.BodyLimit
	}
	return limit
}

// admit runs the checks every sender's route starts with, each refusing
// with nothing stored: the caller's address (403; an empty list allows any)
// and the body's size (413).
func (s *Server) admit(c *fiber.Ctx, source string, allow []netip.Prefix, limit int) error {
	c.Locals(localSource, source)
	if !allowed(allow, s.clientIP(c)) {
		return storegate.Errorf(storegate.CodeInvalidClientIP, "caller address is not allowed for this source")
	}
	if len(c.BodyRaw()) > limit {
		return storegate.Errorf(storegate.CodeTooLarge, "request body is larger than %d bytes", limit)
	}
	return nil
}

// verifyStandard checks a Standard Webhooks signature over the raw body.
func (s *Server) verifyStandard(c *fiber.Ctx, source string, v interface {
	Verify(header func(string) string, body []byte) error
}) error {
	if err := v.Verify(header(c), c.BodyRaw()); err != nil {
		if s.deps.Metrics != nil {
			s.deps.Metrics.SignatureFailure(source)
		}
		return storegate.Errorf(storegate.CodeInvalidSignature, "%s", standardProblem(err))
	}
	return nil
}
