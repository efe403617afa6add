package mapping

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"storegate"
)

// Third-party store events, proxied by a studio (POST /stores/{source}/events)
// or pulled from a platform by Fulfill Orders. Both paths map through Store,
// so one platform order has one transaction id whichever way it arrives.

// Store event types.
const (
	StorePurchase           = "purchase"
	StoreRefund             = "refund"
	StoreChargeback         = "chargeback"
	StoreReturn             = "return"
	StoreChargebackReversed = "chargeback_reversed"
)

// storePlatforms are the platforms whose orders studios proxy, by the name
// used in payloads, routes and catalog products.
var storePlatforms = map[string]storegate.Platform{
	"steam": storegate.PlatformSteam, "epic": storegate.PlatformEpic, "xbox": storegate.PlatformXbox,
	"playstation": storegate.PlatformPlayStation, "twitch": storegate.PlatformTwitch,
}

// StorePlatform returns the platform a payload names ("epic"), and false
// for a name that is not a store platform.
func StorePlatform(name string) (storegate.Platform, bool) {
	p, ok := storePlatforms[name]
	return p, ok
}

// StorePlatformNames lists the store platforms' payload names.
func StorePlatformNames() []string { return []string{"steam", "epic", "xbox", "playstation", "twitch"} }

// ClawsBack reports whether a refund, chargeback or return on platform takes
// back what the order granted. Epic, PlayStation and Xbox support claw-back;
// Steam and Twitch do not support refunds of a consumed purchase, so their
// refunds are recorded without claw-back.
func ClawsBack(p storegate.Platform) bool {
	switch p {
	case storegate.PlatformEpic, storegate.PlatformPlayStation, storegate.PlatformXbox:
		return true
	}
	return false
}

// StoreEvent is one store event. Its JSON Schema (schemas/stores/<platform>)
// has checked it; Order holds the platform's own order identity.
type StoreEvent struct {
	Type     string      `json:"type"`
	Platform string      `json:"platform"`
	PlayerID string      `json:"player_id"`
	Order    StoreOrder  `json:"order"`
	Items    []StoreItem `json:"items"`
	// OccurredAt is when the platform says it happened. Optional.
	OccurredAt *time.Time `json:"occurred_at,omitempty"`
	// Reason is the platform's or studio's reason text. Optional.
	Reason string `json:"reason,omitempty"`
}

// StoreOrder is a platform's order identity. Which fields are set depends on
// the platform: Steam orderid (and transid), Epic entitlement_id, Xbox
// order_id and line_item_id, PlayStation entitlement_id, Twitch
// entitlement_id.
type StoreOrder struct {
	OrderID       ID     `json:"orderid,omitempty"` // steam
	TransID       ID     `json:"transid,omitempty"` // steam
	SteamID       ID     `json:"steamid,omitempty"` // steam
	AppID         ID     `json:"appid,omitempty"`   // steam
	EntitlementID string `json:"entitlement_id,omitempty"`
	XboxOrderID   string `json:"order_id,omitempty"`     // xbox
	LineItemID    string `json:"line_item_id,omitempty"` // xbox
}

// StoreItem is one purchased product.
type StoreItem struct {
	ProductID string `json:"product_id"`
	Quantity  int64  `json:"quantity"`
}

// StoreSource is what mapping needs of one configured store-proxy source.
type StoreSource struct {
	Name   string
	Target string
}

// StoreOrderIDs returns an event's platform, the transaction id of its
// order's grant ("<platform>.<source>.<order>[.<line item>]") and a
// readable reference.
func StoreOrderIDs(src string, ev *StoreEvent) (storegate.Platform, string, string, error) {
	platform, ok := storePlatforms[ev.Platform]
	if !ok {
		return "", "", "", storegate.FieldError(fmt.Sprintf("unknown platform %q", ev.Platform), "platform")
	}
	o := ev.Order
	var id, ref string
	switch platform {
	case storegate.PlatformSteam:
		id, ref = string(o.OrderID), "steam order "+string(o.OrderID)
		if o.TransID != "" {
			ref += " (transid " + string(o.TransID) + ")"
		}
	case storegate.PlatformXbox:
		id, ref = o.XboxOrderID+"."+o.LineItemID, "xbox order "+o.XboxOrderID+" line item "+o.LineItemID
		if o.XboxOrderID == "" || o.LineItemID == "" {
			id = ""
		}
	default:
		id, ref = o.EntitlementID, ev.Platform+" entitlement "+o.EntitlementID
	}
	if id == "" {
		return "", "", "", storegate.FieldError("the order names no "+ev.Platform+" order identity", "order")
	}
	return platform, ev.Platform + "." + src + "." + id, ref, nil
}

// ReinstateID is the transaction id of the grant that restores an order
// after its chargeback was reversed.
func ReinstateID(fulfillID string) string { return fulfillID + ".reinstate" }

// Store maps one store event:
//
//   - purchase: grant the items, mapped from the platform's product ids.
//   - refund, chargeback, return: on Epic, PlayStation and Xbox, revoke
//     everything the order granted (a spent currency balance goes negative);
//     on Steam and Twitch, record it without claw-back. All three share one
//     revoke id, so an order is clawed back once however many arrive.
//   - chargeback_reversed: on a claw-back platform, the claw-back (queued
//     once, if the chargeback itself never arrived) and a re-grant under its
//     own id, so the player ends up owning the order once in every arrival
//     order; on Steam and Twitch, nothing was taken, so it is recorded.
//
// The key is the type with the order identity: a repeat of an event is the
// same event. Limitation: one chargeback and one reversal per order.
func Store(src StoreSource, ev *StoreEvent, cat *Catalog, now time.Time) (Plan, error) {
	platform, id, ref, err := StoreOrderIDs(src.Name, ev)
	if err != nil {
		return Plan{}, err
	}
	// The key leaves the source out: the inbox is per source already.
	identity := strings.TrimPrefix(id, ev.Platform+"."+src.Name+".")
	p := Plan{Key: ev.Type + ":" + ev.Platform + "." + identity, PlayerID: ev.PlayerID, OrderRef: ref}
	var lines []storegate.Line
	if ev.Type == StorePurchase || ev.Type == StoreChargebackReversed {
		// Only grants need the products mapped: a claw-back takes back what
		// the grant gave, even if the catalog has changed since.
		if lines, err = storeLines(ev, cat); err != nil {
			return p, err
		}
	}
	base := storegate.Command{Source: src.Name, Target: src.Target, PlayerID: ev.PlayerID, Platform: platform,
		OrderRef: ref, CreatedAt: now}
	grant := base
	grant.ID, grant.Kind, grant.Lines = id, storegate.KindFulfill, lines
	revoke := base
	revoke.ID, revoke.Kind, revoke.Reverses, revoke.Reason = storegate.RevokeID(id), storegate.KindRevoke, id, ev.Type
	switch ev.Type {
	case StorePurchase:
		p.Commands = []storegate.Command{grant}
	case StoreRefund, StoreChargeback, StoreReturn:
		if ClawsBack(platform) {
			p.Commands = []storegate.Command{revoke}
			break
		}
		p.Notes = []storegate.OrderNote{{Order: id, Source: src.Name, PlayerID: ev.PlayerID, Platform: platform, Ref: ref,
			Status: storegate.OrderRefunded, Event: ev.Type, Reason: string(platform) + " does not support claw-back of a consumed purchase: recorded only"}}
	case StoreChargebackReversed:
		if !ClawsBack(platform) {
			p.Notes = []storegate.OrderNote{{Order: id, Source: src.Name, PlayerID: ev.PlayerID, Platform: platform, Ref: ref,
				Status: storegate.OrderGranted, Event: ev.Type, Reason: "nothing was clawed back, so nothing is granted again"}}
			break
		}
		revoke.Reason = StoreChargeback
		again := grant
		again.ID, again.Order = ReinstateID(id), id
		p.Commands = []storegate.Command{revoke, again}
	default:
		return p, storegate.FieldError(fmt.Sprintf("unknown event type %q", ev.Type), "type")
	}
	return p, nil
}

func storeLines(ev *StoreEvent, cat *Catalog) ([]storegate.Line, error) {
	if len(ev.Items) == 0 {
		return nil, storegate.FieldError("the event has no items", "items")
	}
	lines := make([]storegate.Line, 0, len(ev.Items))
	for i, it := range ev.Items {
		path := fmt.Sprintf("items.%d", i)
		e, ok := cat.ByProduct(ev.Platform, it.ProductID)
		if !ok {
			return nil, storegate.FieldError(fmt.Sprintf("%s product %q maps to no catalog sku", ev.Platform, it.ProductID), path+".product_id")
		}
		line, err := cat.Line(e.SKU, it.Quantity)
		if err != nil {
			return nil, storegate.FieldError(err.Error(), path+".quantity")
		}
		lines = append(lines, line)
	}
	return lines, nil
}

// Decoder checks a payload against a named schema and decodes what the
// schema saw (schemas.Set).
type Decoder interface {
	Decode(schema string, body []byte, v any) error
}

// ReadStoreEvent validates a store event against its platform's schema and
// decodes it. want, when set, is the platform the event must be for.
func ReadStoreEvent(d Decoder, body []byte, want string) (*StoreEvent, error) {
	var head struct {
		Platform string `json:"platform"`
	}
	if err := d.Decode("stores/event", body, &head); err != nil {
		return nil, err
	}
	if want != "" && head.Platform != want {
		return nil, storegate.FieldError("the order is for platform "+head.Platform+", not "+want, "platform")
	}
	var ev StoreEvent
	if err := d.Decode("stores/"+head.Platform, body, &ev); err != nil {
		return nil, err
	}
	return &ev, nil
}

// Effects of a store event, as answered.
const (
	EffectGrant    = "grant"
	EffectClawBack = "claw_back"
	EffectRecord   = "record"
	EffectRegrant  = "regrant"
)

// StoreEffect is what a store event's plan does downstream.
func StoreEffect(plan Plan) string {
	switch {
	case len(plan.Commands) == 0:
		return EffectRecord
	case plan.Commands[len(plan.Commands)-1].Order != "":
		return EffectRegrant
	case plan.Commands[0].Kind == storegate.KindRevoke:
		return EffectClawBack
	}
	return EffectGrant
}

// StoreAnswer is what a store event is answered, stored with it so a repeat
// gets the same answer, whether it was proxied or pulled.
func StoreAnswer(ev *StoreEvent, plan Plan) storegate.Answer {
	body, _ := json.Marshal(map[string]any{"status": "accepted", "event": ev.Type, "order_ref": plan.OrderRef,
		"transaction_id": plan.Order(), "effect": StoreEffect(plan)})
	return storegate.Answer{Status: http.StatusOK, Body: body}
}
