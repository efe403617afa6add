package api

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/mapping"
	"storegate/server"
	"storegate/signing"
)

// Fulfill Orders (the pull model): a game client asks storegate to process
// its player's orders on one platform. storegate asks the platform's
// connector for the orders that changed since the player's last successful
// run, maps each like a proxied store event (same keys, same transaction
// ids, so an order proxied and pulled is granted once), queues the grants and
// claw-backs, waits briefly for them, and answers with what it did.

// OrderConnector lists a player's orders on one platform, each in its
// current state written as a store event (schemas/stores/<platform>.json),
// that changed at or after since (the zero time: all of them).
type OrderConnector interface {
	Orders(ctx context.Context, playerID, platform string, since time.Time) ([]json.RawMessage, error)
}

// PlayerTokens verifies a game client's player token.
type PlayerTokens interface {
	Verify(token string) (signing.Claims, error)
}

// FulfillOrders configures POST /v1/players/{playerId}/fulfill-orders.
type FulfillOrders struct {
	// Source is the store-proxy source whose transaction ids pulled orders
	// share; Target receives their commands. Required.
	Source string
	Target string
	// Tokens verifies the caller's bearer token; its subject must be the
	// player in the route. Required.
	Tokens PlayerTokens
	// Connectors by platform name (steam, epic, ...). A platform without
	// one is refused.
	Connectors map[string]OrderConnector
	// Overlap is subtracted from the cursor when asking for changes, so a
	// platform clock behind storegate's loses nothing (orders seen again are
	// duplicates). Default 0.
	Overlap time.Duration
	// Wait is how long the answer waits for the queued grants and
	// claw-backs to be applied, so it can say "granted". 0 answers at once
	// with what was queued.
	Wait time.Duration
	// Deadline bounds the connector call. Default 10s.
	Deadline time.Duration
}

func (h *handlers) playerRoutes(app *fiber.App) {
	if f := h.deps.FulfillOrders; f != nil && f.Deadline <= 0 {
		f.Deadline = 10 * time.Second
	}
	app.Post("/v1/players/:playerId/fulfill-orders", h.handleFulfillOrders)
}

// fulfilledOrder is one order in a Fulfill Orders answer.
type fulfilledOrder struct {
	TransactionID string                `json:"transaction_id,omitempty"`
	OrderRef      string                `json:"order_ref,omitempty"`
	Event         string                `json:"event,omitempty"`
	Items         []mapping.PartnerItem `json:"items,omitempty"`
	Status        storegate.OrderStatus `json:"status,omitempty"`
	Reason        string                `json:"reason,omitempty"`
}

type fulfillAnswer struct {
	PlayerID   string           `json:"player_id"`
	Platform   string           `json:"platform"`
	Since      *time.Time       `json:"since"`
	Fulfilled  []fulfilledOrder `json:"fulfilled"`
	ClawedBack []fulfilledOrder `json:"clawed_back"`
	Recorded   []fulfilledOrder `json:"recorded"`
	Failed     []fulfilledOrder `json:"failed"`
	Unchanged  int              `json:"unchanged"`
}

func (h *handlers) handleFulfillOrders(c *fiber.Ctx) error {
	f := h.deps.FulfillOrders
	if f == nil {
		return storegate.Errorf(storegate.CodeNotFound, "Fulfill Orders is not configured")
	}
	server.SetSource(c, f.Source)
	server.SetType(c, "fulfill_orders")
	player, err := h.player(c, f)
	if err != nil {
		return err
	}
	var req struct {
		Platform string `json:"platform"`
	}
	if err := h.srv.Decode(c, "players/fulfill_orders", &req); err != nil {
		return err
	}
	connector := f.Connectors[req.Platform]
	if connector == nil {
		return storegate.FieldError("no order connector is configured for "+req.Platform, "platform")
	}
	platform, _ := mapping.StorePlatform(req.Platform)
	ctx := c.UserContext()
	started := h.srv.Now()
	ans := fulfillAnswer{PlayerID: player, Platform: req.Platform, Fulfilled: []fulfilledOrder{}, ClawedBack: []fulfilledOrder{},
		Recorded: []fulfilledOrder{}, Failed: []fulfilledOrder{}}
	raws, err := h.pull(c, f, connector, player, platform, &ans)
	if err != nil {
		return err
	}
	complete, waitFor, err := h.fulfillAll(ctx, f, player, platform, raws, &ans)
	if err != nil {
		return err
	}
	if complete {
		if err := h.deps.Orders.SetFulfillCursor(ctx, player, platform, started); err != nil {
			// The next run asks from the older cursor: more duplicates, nothing lost.
			h.log.Warn("could not store the Fulfill Orders cursor", "request_id", server.RequestID(c), "err", err)
		}
	}
	h.reportStatuses(ctx, f.Wait, player, waitFor, &ans)
	return c.JSON(ans)
}

// player is the player of the path, once the bearer's player token says
// it is them.
func (h *handlers) player(c *fiber.Ctx, f *FulfillOrders) (string, error) {
	player, err := Param(c, "playerId")
	if err != nil {
		return "", err
	}
	token, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if !ok || token == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="storegate-players"`)
		return "", storegate.Errorf(storegate.CodeUnauthorized, "Fulfill Orders needs Authorization: Bearer <player token>")
	}
	claims, err := f.Tokens.Verify(token)
	if err != nil {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="storegate-players", error="invalid_token"`)
		return "", storegate.Errorf(storegate.CodeUnauthorized, "player token is invalid or expired")
	}
	if claims.Subject != player {
		return "", storegate.Errorf(storegate.CodeForbidden, "the player token is for another player")
	}
	return player, nil
}

// pull asks the connector for the player's orders that changed since the
// start of their last complete run, less the overlap against clock skew.
func (h *handlers) pull(c *fiber.Ctx, f *FulfillOrders, connector OrderConnector, player string, platform storegate.Platform,
	ans *fulfillAnswer) ([]json.RawMessage, error) {
	var since time.Time
	cursor, ok, err := h.deps.Orders.FulfillCursor(c.UserContext(), player, platform)
	if err != nil {
		return nil, storegate.Unavailable(err)
	}
	if ok {
		since = cursor.Add(-f.Overlap)
		ans.Since = &since
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), f.Deadline)
	defer cancel()
	raws, err := connector.Orders(ctx, player, ans.Platform, since)
	if err != nil {
		h.log.Warn("order connector failed", "request_id", server.RequestID(c), "platform", ans.Platform, "err", err)
		return nil, &storegate.Error{Code: storegate.CodeUnavailable, Message: "the platform's orders could not be fetched, retry later", Err: err}
	}
	return raws, nil
}

// fulfillAll maps and queues every pulled order. complete is false when an
// order could not be processed: it is reported, and the cursor stays so the
// next run tries it again. waitFor are the transaction ids queued now.
func (h *handlers) fulfillAll(ctx context.Context, f *FulfillOrders, player string, platform storegate.Platform,
	raws []json.RawMessage, ans *fulfillAnswer) (complete bool, waitFor []string, err error) {
	src := mapping.StoreSource{Name: f.Source, Target: f.Target}
	complete = true
	for i, raw := range raws {
		acted, err := h.fulfillOne(ctx, src, player, ans.Platform, raw, ans)
		var e *storegate.Error
		switch {
		case errors.As(err, &e) && e.Code != storegate.CodeUnavailable && e.Code != storegate.CodeInternal:
			complete = false
			ans.Failed = append(ans.Failed, h.failOrder(ctx, src, player, platform, raw, i, e))
		case err != nil:
			return false, nil, storegate.Unavailable(err)
		case acted != "":
			waitFor = append(waitFor, acted)
		}
	}
	if len(waitFor) > 0 {
		h.deps.Notify()
	}
	return complete, waitFor, nil
}

// fulfillOne maps one pulled order and stores the events it implies. It
// returns the order's transaction id when something new was queued or
// recorded. An order in a refunded state implies its purchase: on a
// claw-back platform the purchase is stored too (a duplicate if it was seen),
// so an order never seen before is granted and clawed back, never clawed
// back alone; on Steam and Twitch a refund that was never granted stays
// ungranted. A reversed chargeback implies the purchase on every platform.
func (h *handlers) fulfillOne(ctx context.Context, src mapping.StoreSource, player, platform string, raw json.RawMessage,
	ans *fulfillAnswer) (string, error) {
	ev, err := mapping.ReadStoreEvent(h.srv.Schemas(), raw, platform)
	if err != nil {
		return "", err
	}
	if ev.PlayerID != player {
		return "", storegate.FieldError("the order is for another player", "player_id")
	}
	p, _ := mapping.StorePlatform(ev.Platform)
	events := []*mapping.StoreEvent{ev}
	if ev.Type == mapping.StoreChargebackReversed || ev.Type != mapping.StorePurchase && mapping.ClawsBack(p) {
		purchase := *ev
		purchase.Type, purchase.Reason = mapping.StorePurchase, ""
		events = []*mapping.StoreEvent{&purchase, ev}
	}
	now := h.srv.Now()
	var plans []mapping.Plan
	for _, e := range events {
		plan, err := mapping.Store(src, e, h.deps.Catalog, now)
		if err != nil {
			return "", err
		}
		plans = append(plans, plan)
	}
	newest := ""
	for i, e := range events {
		body, err := json.Marshal(e)
		if err != nil {
			return "", storegate.Internal(err)
		}
		_, dup, err := h.deps.Inbox.Accept(ctx, plans[i].Event(src.Name, e.Type, body, now), plans[i].Commands, mapping.StoreAnswer(e, plans[i]))
		if err != nil {
			return "", storegate.Unavailable(err)
		}
		if !dup {
			newest = plans[i].Order()
		}
	}
	// The order is reported by its current state: the last event.
	plan := plans[len(plans)-1]
	if newest == "" {
		ans.Unchanged++
		return "", nil
	}
	o := fulfilledOrder{TransactionID: plan.Order(), OrderRef: plan.OrderRef, Event: ev.Type, Status: storegate.OrderReceived}
	for _, it := range plans[0].Commands {
		for _, l := range it.Lines {
			o.Items = append(o.Items, mapping.PartnerItem{SKU: l.SKU, Quantity: l.Quantity})
		}
	}
	switch mapping.StoreEffect(plan) {
	case mapping.EffectGrant, mapping.EffectRegrant:
		ans.Fulfilled = append(ans.Fulfilled, o)
	case mapping.EffectClawBack:
		ans.ClawedBack = append(ans.ClawedBack, o)
	default:
		o.Status = storegate.OrderRefunded
		if len(plan.Notes) > 0 {
			o.Status, o.Reason = plan.Notes[0].Status, plan.Notes[0].Reason
		}
		ans.Recorded = append(ans.Recorded, o)
	}
	return newest, nil
}

// failOrder reports a pulled order that cannot be processed, and records it
// in the order's history when its identity is readable.
func (h *handlers) failOrder(ctx context.Context, src mapping.StoreSource, player string, platform storegate.Platform,
	raw json.RawMessage, i int, e *storegate.Error) fulfilledOrder {
	reason := e.Message
	if len(e.Fields) > 0 && e.Fields[0] != "" {
		reason = strings.Join(e.Fields, ", ") + ": " + reason
	}
	out := fulfilledOrder{Reason: "orders." + strconv.Itoa(i) + ": " + reason, Status: storegate.OrderFailed}
	var ev mapping.StoreEvent
	if json.Unmarshal(raw, &ev) != nil || ev.PlayerID != player {
		return out
	}
	_, id, ref, err := mapping.StoreOrderIDs(src.Name, &ev)
	if err != nil {
		return out
	}
	out.TransactionID, out.OrderRef, out.Event = id, ref, ev.Type
	note := storegate.OrderNote{Order: id, Source: src.Name, PlayerID: player, Platform: platform, Ref: ref,
		Status: storegate.OrderFailed, Event: ev.Type, Reason: "Fulfill Orders could not process it: " + reason}
	if err := h.deps.Orders.TrackOrder(ctx, note); err != nil {
		h.log.Warn("could not record a failed order", "order", id, "err", err)
	}
	return out
}

// reportStatuses waits up to wait for the orders acted on to leave
// "received" (their commands applied), then writes each one's status.
func (h *handlers) reportStatuses(ctx context.Context, wait time.Duration, player string, ids []string, ans *fulfillAnswer) {
	if len(ids) == 0 {
		return
	}
	deadline := h.srv.Now().Add(wait)
	var statuses map[string]storegate.OrderStatus
	for {
		var err error
		statuses, err = h.deps.Orders.OrderStatuses(ctx, player, ids)
		if err != nil {
			h.log.Warn("could not read order statuses", "err", err)
			return
		}
		pending := false
		for _, id := range ids {
			if st := statuses[id]; st == storegate.OrderReceived || st == "" {
				pending = true
			}
		}
		if !pending || !h.srv.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	// A status read may come from a commit not yet on disk; the client is
	// told "granted" only once it is.
	if err := h.deps.Orders.Durable(ctx); err != nil {
		h.log.Warn("could not confirm order statuses are durable", "err", err)
		return
	}
	for _, list := range [][]fulfilledOrder{ans.Fulfilled, ans.ClawedBack, ans.Recorded} {
		for i := range list {
			if st, ok := statuses[list[i].TransactionID]; ok {
				list[i].Status = st
			}
		}
	}
}
