package webhooks

import (
	"bytes"
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

// StoresSource is one configured store-proxy source (a studio's proxy). Its
// Verifier checks the Standard Webhooks signature and is required; an empty
// AllowIPs allows any address (the signature is the control).
type StoresSource struct {
	Source
	// Platforms are the store platforms this source may send ("steam",
	// "epic", ...). Empty: all of them.
	Platforms []string
}

// storesKind admits store proxies' requests.
var storesKind = &kind{json: true, problem: standardProblem}

type storesAPI struct {
	*handlers
	sources map[string]*StoresSource
}

func (h *handlers) storeRoutes(app *fiber.App) {
	a := &storesAPI{handlers: h, sources: map[string]*StoresSource{}}
	for i := range h.deps.Stores {
		src := &h.deps.Stores[i]
		src.prepare(h.srv, storesKind)
		a.sources[src.Name] = src
	}
	app.Post("/stores/:source/events", a.handleEvent)
}

// handleEvent checks, each refusal storing nothing: source (404), caller
// address (403), size (413), signature (401), content type (415), the
// platform's schema (400), products in the catalog and the player (400).
func (a *storesAPI) handleEvent(c *fiber.Ctx) error {
	src, err := admit(a.handlers, c, a.sources, "")
	if err != nil {
		return err
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
	if err := a.checkGrantee(c, &src.Source, plan, "player_id"); err != nil {
		return err
	}
	return a.accept(c, plan.Event(src.Name, ev.Type, body, a.srv.Now()), plan.Commands, mapping.StoreAnswer(ev, plan))
}
