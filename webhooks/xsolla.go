package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/mapping"
	"storegate/server"
	"storegate/signing"
)

// XsollaSource is one configured Xsolla project. Its Verifier checks the
// Authorization: Signature header.
type XsollaSource struct {
	Source
	// GrantOn is order_paid (default) or payment; see mapping.XsollaSource.
	GrantOn string
	// LinkParameters are returned as custom_parameters when Xsolla links a
	// transaction (create_external_transaction). Optional.
	LinkParameters map[string]any
}

// mapping is the source as the mapping package reads it.
func (s *XsollaSource) mapping() mapping.XsollaSource {
	return mapping.XsollaSource{Name: s.Name, Target: s.Target, GrantOn: s.GrantOn, Receipts: s.Receipts}
}

// xsollaKind admits Xsolla's requests. The Digital Distribution Hub
// document answers a wrong signature with 400, not 401.
var xsollaKind = &kind{
	statuses: map[storegate.Code]int{storegate.CodeInvalidSignature: fiber.StatusBadRequest},
	json:     true,
	problem:  xsollaProblem,
}

// xsollaProblem says what is wrong with an Authorization: Signature header.
func xsollaProblem(err error) string {
	switch {
	case errors.Is(err, signing.ErrMissingSignature):
		return "Authorization: Signature header is missing"
	case errors.Is(err, signing.ErrMalformedSignature):
		return "Authorization header is not 'Signature <40 lowercase hex>'"
	}
	return "signature does not match the body"
}

// handleXsolla is POST /webhooks/xsolla/:source. The checks run in this
// order, each refusing with nothing stored: source, caller address, body size,
// signature over the raw bytes, content type, then the body against the
// schema of its type (schemas.Decode).
func (h *handlers) handleXsolla(c *fiber.Ctx) error {
	src, err := admit(h, c, h.xsolla, "")
	if err != nil {
		return err
	}
	// Fiber reuses the request buffer after the handler returns; the body is
	// stored, so it is copied once here.
	body := bytes.Clone(c.BodyRaw())
	typ, err := h.xsollaType(c, body)
	if err != nil {
		return err
	}
	if slices.Contains(mapping.XsollaAcknowledged, typ) {
		return h.xsollaAcknowledge(c, src, typ, body)
	}
	var n mapping.XsollaNotification
	if err := h.srv.Schemas().Decode("xsolla/"+typ, body, &n); err != nil {
		return err
	}
	switch typ {
	case mapping.XsollaUserValidation:
		return h.xsollaUserValidation(c, src, string(n.User.ID))
	case mapping.XsollaUserSearch:
		return h.xsollaUserSearch(c, src, string(n.User.PublicID))
	case mapping.XsollaLink:
		return h.xsollaLink(c, src, &n)
	case mapping.XsollaGetPinCode:
		return h.xsollaPinCode(c, src, &n, body)
	case mapping.XsollaPartnerSideCatalog:
		return h.xsollaCatalog(c, src)
	}
	return h.xsollaOrder(c, src, typ, &n, body)
}

// xsollaType reads notification_type (a key in another case is refused
// like on every route) and refuses a type outside Xsolla's list.
func (h *handlers) xsollaType(c *fiber.Ctx, body []byte) (string, error) {
	var head struct {
		Type string `json:"notification_type"`
	}
	if err := h.srv.Schemas().Decode("xsolla/notification", body, &head); err != nil {
		return "", err
	}
	typ := head.Type
	if !slices.Contains(mapping.XsollaAcknowledged, typ) && (typ == "notification" || !h.srv.Schemas().Has("xsolla/"+typ)) {
		server.SetType(c, "unknown")
		return "", storegate.FieldError("unknown notification_type "+strconv.Quote(clipText(typ, 100)), "notification_type")
	}
	server.SetType(c, typ)
	return typ, nil
}

// xsollaOrder maps a type that grants, revokes or is recorded against an
// order, and stores it with its commands.
func (h *handlers) xsollaOrder(c *fiber.Ctx, src *XsollaSource, typ string, n *mapping.XsollaNotification, body []byte) error {
	if err := h.validate.Struct(n); err != nil {
		return validationError(err)
	}
	plan, err := mapping.Xsolla(src.mapping(), n, h.deps.Catalog, body, h.srv.Now())
	if err != nil {
		return err
	}
	if err := h.checkGrantee(c, &src.Source, plan, playerField(n)); err != nil {
		return err
	}
	return h.acceptXsolla(c, src, typ, plan, body)
}

// acceptXsolla stores the event with its commands and answers 204, or the
// first answer again for a duplicate.
func (h *handlers) acceptXsolla(c *fiber.Ctx, src *XsollaSource, typ string, plan mapping.Plan, body []byte) error {
	return h.accept(c, plan.Event(src.Name, typ, body, h.srv.Now()), plan.Commands, storegate.Answer{Status: fiber.StatusNoContent})
}

// xsollaAcknowledge stores a type storegate acts on in no way. Its schema
// is loose on purpose: Xsolla's payloads for these types vary, and a
// refusal would be final.
func (h *handlers) xsollaAcknowledge(c *fiber.Ctx, src *XsollaSource, typ string, body []byte) error {
	var ack struct {
		User json.RawMessage `json:"user"`
	}
	if err := h.srv.Schemas().Decode("xsolla/acknowledged", body, &ack); err != nil {
		return err
	}
	// The player, when the user is an object that names one; tracking is
	// all it is read for, so a user of another shape is not an error.
	var user mapping.XsollaUser
	_ = json.Unmarshal(ack.User, &user)
	player := string(user.ExternalID)
	if player == "" {
		player = string(user.ID)
	}
	return h.acceptXsolla(c, src, typ, mapping.XsollaAck(src.mapping(), typ, player, body), body)
}

func playerField(n *mapping.XsollaNotification) string {
	if n.Order != nil {
		return "user.external_id"
	}
	return "user.id"
}

func (h *handlers) xsollaUserValidation(c *fiber.Ctx, src *XsollaSource, playerID string) error {
	exists, err := h.userExists(c.UserContext(), src.Target, playerID)
	if err != nil {
		// Unsure is not "invalid": answering INVALID_USER would fail a real
		// player's payment. Xsolla retries a 5xx.
		return storegate.Unavailable(err)
	}
	if !exists {
		return &storegate.Error{Code: storegate.CodeInvalidUser, Message: "no such player", Fields: []string{"user.id"}}
	}
	attrs := h.userAttributes(c.UserContext(), src, playerID)
	if len(attrs) == 0 {
		return c.SendStatus(fiber.StatusNoContent)
	}
	body, err := h.srv.Checked("answers/xsolla_user_attributes", fiber.Map{"user_attributes": attrs})
	if err != nil {
		// Every attribute passed on its own; the player still gets the yes.
		h.log.Error("user attributes refused as a whole; answering without them", "request_id", server.RequestID(c), "err", err)
		return c.SendStatus(fiber.StatusNoContent)
	}
	return server.Answer(c, storegate.Answer{Status: fiber.StatusOK, Body: body})
}

func (h *handlers) xsollaUserSearch(c *fiber.Ctx, src *XsollaSource, publicID string) error {
	// The embedded ledger knows players by one id, so public_id is that id.
	exists, err := h.userExists(c.UserContext(), src.Target, publicID)
	if err != nil {
		return storegate.Unavailable(err)
	}
	if !exists {
		return &storegate.Error{Code: storegate.CodeInvalidUser, Message: "no such player", Fields: []string{"user.public_id"}}
	}
	return h.srv.SendChecked(c, fiber.StatusOK, "answers/xsolla_user_search",
		fiber.Map{"user": fiber.Map{"id": publicID, "public_id": publicID}})
}

// xsollaLink answers transaction-ID linking. Our transaction id for an order
// is the id its fulfillment will carry, so Xsolla's records, the ledger and AGS
// all show one id; the first answer for an order is stored and repeated.
func (h *handlers) xsollaLink(c *fiber.Ctx, src *XsollaSource, n *mapping.XsollaNotification) error {
	ans := fiber.Map{"id": mapping.XsollaFulfillID(src.Name, n.OrderID)}
	if len(src.LinkParameters) > 0 {
		ans["custom_parameters"] = src.LinkParameters
	}
	body, err := h.srv.Checked("answers/xsolla_transaction_info", ans)
	if err != nil {
		return err
	}
	stored, err := h.deps.Inbox.Link(c.UserContext(), src.Name, n.OrderID.String(), ans["id"].(string), body)
	if err != nil {
		return storegate.Unavailable(err)
	}
	return server.Answer(c, storegate.Answer{Status: fiber.StatusOK, Body: stored})
}

// xsollaPinCode answers get_pincode with a key from the source's target:
// 200 {"pin_code": "..."}. A repeat gets the first answer again.
func (h *handlers) xsollaPinCode(c *fiber.Ctx, src *XsollaSource, n *mapping.XsollaNotification, body []byte) error {
	pc := h.deps.PinCodes[src.Target]
	if pc == nil {
		// A configuration fault, not the player's: Xsolla retries a 5xx for
		// hours, time for an operator to give the source a target with keys.
		return storegate.Unavailable(errors.New("get_pincode: target " + src.Target + " hands out no pin codes"))
	}
	plan := mapping.XsollaPinCodePlan(mapping.XsollaSource{Name: src.Name, Target: src.Target}, n, server.RandomID())
	req := storegate.PinCodeRequest{RequestID: "xsolla." + src.Name + "." + plan.Key, Source: src.Name,
		PlayerID: plan.PlayerID}
	if n.PinCode != nil {
		req.Product, req.DRM = n.PinCode.DigitalContent, n.PinCode.DRM
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), h.cfg.UserDeadline)
	defer cancel()
	code, err := pc.PinCode(ctx, req)
	if err != nil {
		return storegate.Unavailable(err)
	}
	ans, err := h.srv.Checked("answers/xsolla_pin_code", fiber.Map{"pin_code": code})
	if err != nil {
		return err
	}
	ev := plan.Event(src.Name, mapping.XsollaGetPinCode, body, h.srv.Now())
	stored, _, err := h.deps.Inbox.Accept(c.UserContext(), ev, nil, storegate.Answer{Status: fiber.StatusOK, Body: ans})
	if err != nil {
		return storegate.Unavailable(err)
	}
	return server.Answer(c, stored)
}

// xsollaCatalog answers partner_side_catalog with every SKU of the catalog,
// without a quantity limit but for game keys: an item storegate cannot
// grant is one Xsolla should not sell, so a game_key SKU's limit is the
// keys left in its pool when the source's target hands them out.
func (h *handlers) xsollaCatalog(c *fiber.Ctx, src *XsollaSource) error {
	skus := h.deps.Catalog.SKUs()
	left := map[string]int64{}
	if keys := h.deps.Keys[src.Target]; keys != nil {
		var err error
		if left, err = keys.KeysAvailable(c.UserContext(), h.deps.Catalog.GameKeys()); err != nil {
			return storegate.Unavailable(err)
		}
	}
	items := make([]fiber.Map, 0, len(skus))
	for _, e := range skus {
		var quantity any
		if n, ok := left[e.SKU]; ok {
			quantity = n
		}
		items = append(items, fiber.Map{"sku": e.SKU, "quantity": quantity})
	}
	return h.srv.SendChecked(c, fiber.StatusOK, "answers/xsolla_partner_side_catalog", items)
}

// XsollaRanges are the addresses Xsolla sends webhooks from, as its PHP SDK
// listed them on 2025-10-31 (four /24 ranges and five single GCP addresses).
// They are the default allowlist of an Xsolla source.
func XsollaRanges() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{"185.30.20.0/24", "185.30.21.0/24", "185.30.22.0/24", "185.30.23.0/24",
		"34.102.38.178/32", "34.94.43.207/32", "35.236.73.234/32", "34.94.69.44/32", "34.102.22.197/32"} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}
