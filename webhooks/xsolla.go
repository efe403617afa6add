package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/mapping"
	"storegate/signing"
)

// handleXsolla is POST /webhooks/xsolla/:source. The checks run in this
// order, each refusing with nothing stored: source, caller address, body size,
// signature over the raw bytes, content type, then the body against the
// schema of its type (schemas.Decode).
func (s *Server) handleXsolla(c *fiber.Ctx) error {
	src := s.xsolla[c.Params("source")]
	if src == nil {
		return storegate.Errorf(storegate.CodeNotFound, "unknown source")
	}
	c.Locals(localStatuses, xsollaStatuses)
	if err := s.admit(c, src.Name, src.AllowIPs, src.BodyLimit); err != nil {
		return err
	}
	// Fiber reuses the request buffer after the handler returns; the body is
	// stored, so it is copied once here.
	body := bytes.Clone(c.BodyRaw())
	if err := src.Verifier.Verify(header(c), body); err != nil {
		if s.deps.Metrics != nil {
			s.deps.Metrics.SignatureFailure(src.Name)
		}
		msg := "signature does not match the body"
		if errors.Is(err, signing.ErrMissingSignature) {
			msg = "Authorization: Signature header is missing"
		} else if errors.Is(err, signing.ErrMalformedSignature) {
			msg = "Authorization header is not 'Signature <40 lowercase hex>'"
		}
		return storegate.Errorf(storegate.CodeInvalidSignature, "%s", msg)
	}
	if !isJSON(c.Get(fiber.HeaderContentType)) {
		return storegate.Errorf(storegate.CodeUnsupportedMedia, "Content-Type must be application/json")
	}
	var head struct {
		Type string `json:"notification_type"`
	}
	if err := s.deps.Schemas.Decode("xsolla/notification", body, &head); err != nil {
		return err
	}
	typ := head.Type
	switch {
	case slices.Contains(mapping.XsollaAcknowledged, typ):
		c.Locals(localType, typ)
		return s.xsollaAcknowledge(c, src, typ, body)
	case typ == "notification" || !s.deps.Schemas.Has("xsolla/"+typ):
		c.Locals(localType, "unknown")
		return storegate.FieldError("unknown notification_type "+strconv.Quote(clipText(typ, 100)), "notification_type")
	}
	c.Locals(localType, typ)
	var n mapping.XsollaNotification
	if err := s.deps.Schemas.Decode("xsolla/"+typ, body, &n); err != nil {
		return err
	}
	switch typ {
	case mapping.XsollaUserValidation:
		return s.xsollaUserValidation(c, src, string(n.User.ID))
	case mapping.XsollaUserSearch:
		return s.xsollaUserSearch(c, src, string(n.User.PublicID))
	case mapping.XsollaLink:
		return s.xsollaLink(c, src, &n)
	case mapping.XsollaGetPinCode:
		return s.xsollaPinCode(c, src, &n, body)
	case mapping.XsollaPartnerSideCatalog:
		return s.xsollaCatalog(c)
	}
	if err := s.validate.Struct(&n); err != nil {
		return validationError(err)
	}
	plan, err := mapping.Xsolla(mapping.XsollaSource{Name: src.Name, Target: src.Target, GrantOn: src.GrantOn},
		&n, s.deps.Catalog, body, s.cfg.Now())
	if err != nil {
		return err
	}
	if grants(plan.Commands) {
		// A definite "no such player" is a permanent reject; a target that
		// cannot answer in time does not stop a paid order from being queued:
		// the grant will wait for the target like any other command.
		exists, err := s.userExists(c.UserContext(), src.Target, plan.PlayerID)
		if err == nil && !exists {
			return &storegate.Error{Code: storegate.CodeInvalidUser, Message: "no such player", Fields: []string{playerField(&n)}}
		}
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			s.log.Warn("user check unavailable; queuing the order anyway", "request_id", requestID(c), "source", src.Name, "err", err)
		}
	}
	return s.acceptXsolla(c, src, typ, plan, body)
}

// acceptXsolla stores the event with its commands and answers 204, or the
// first answer again for a duplicate.
func (s *Server) acceptXsolla(c *fiber.Ctx, src *XsollaSource, typ string, plan mapping.Plan, body []byte) error {
	ev := storegate.Event{Source: src.Name, Type: typ, Key: plan.Key, PlayerID: plan.PlayerID, OrderRef: plan.OrderRef,
		Body: body, ReceivedAt: s.cfg.Now(), Notes: plan.Notes}
	stored, dup, err := s.deps.Inbox.Accept(c.UserContext(), ev, plan.Commands, storegate.Answer{Status: fiber.StatusNoContent})
	if err != nil {
		// Not committed, or not known to be: the sender must retry. Never 2xx.
		return storegate.Unavailable(err)
	}
	if dup && s.deps.Metrics != nil {
		s.deps.Metrics.Duplicate(src.Name, typ)
	}
	if !dup && len(plan.Commands) > 0 {
		s.deps.Notify()
	}
	return answer(c, stored)
}

// xsollaAcknowledge stores a type storegate acts on in no way. Its schema
// is loose on purpose: Xsolla's payloads for these types vary, and a
// refusal would be final.
func (s *Server) xsollaAcknowledge(c *fiber.Ctx, src *XsollaSource, typ string, body []byte) error {
	var ack struct {
		User json.RawMessage `json:"user"`
	}
	if err := s.deps.Schemas.Decode("xsolla/acknowledged", body, &ack); err != nil {
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
	msrc := mapping.XsollaSource{Name: src.Name, Target: src.Target, GrantOn: src.GrantOn}
	return s.acceptXsolla(c, src, typ, mapping.XsollaAck(msrc, typ, player, body), body)
}

func grants(cmds []storegate.Command) bool {
	for _, c := range cmds {
		if c.Kind == storegate.KindFulfill {
			return true
		}
	}
	return false
}

func playerField(n *mapping.XsollaNotification) string {
	if n.Order != nil {
		return "user.external_id"
	}
	return "user.id"
}

func answer(c *fiber.Ctx, a storegate.Answer) error {
	if len(a.Body) == 0 {
		return c.SendStatus(a.Status)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(a.Status).Send(a.Body)
}

// userExists asks the source's target within the deadline.
func (s *Server) userExists(ctx context.Context, target, playerID string) (bool, error) {
	u := s.deps.Users[target]
	if u == nil {
		return false, errors.ErrUnsupported
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.UserDeadline)
	defer cancel()
	return u.UserExists(ctx, playerID)
}

func (s *Server) xsollaUserValidation(c *fiber.Ctx, src *XsollaSource, playerID string) error {
	exists, err := s.userExists(c.UserContext(), src.Target, playerID)
	if err != nil {
		// Unsure is not "invalid": answering INVALID_USER would fail a real
		// player's payment. Xsolla retries a 5xx.
		return storegate.Unavailable(err)
	}
	if !exists {
		return &storegate.Error{Code: storegate.CodeInvalidUser, Message: "no such player", Fields: []string{"user.id"}}
	}
	attrs := s.userAttributes(c.UserContext(), src, playerID)
	if len(attrs) == 0 {
		return c.SendStatus(fiber.StatusNoContent)
	}
	body, err := s.checked("answers/xsolla_user_attributes", fiber.Map{"user_attributes": attrs})
	if err != nil {
		// Every attribute passed on its own; the player still gets the yes.
		s.log.Error("user attributes refused as a whole; answering without them", "request_id", requestID(c), "err", err)
		return c.SendStatus(fiber.StatusNoContent)
	}
	return answer(c, storegate.Answer{Status: fiber.StatusOK, Body: body})
}

func (s *Server) xsollaUserSearch(c *fiber.Ctx, src *XsollaSource, publicID string) error {
	// The embedded ledger knows players by one id, so public_id is that id.
	exists, err := s.userExists(c.UserContext(), src.Target, publicID)
	if err != nil {
		return storegate.Unavailable(err)
	}
	if !exists {
		return &storegate.Error{Code: storegate.CodeInvalidUser, Message: "no such player", Fields: []string{"user.public_id"}}
	}
	return s.sendChecked(c, fiber.StatusOK, "answers/xsolla_user_search",
		fiber.Map{"user": fiber.Map{"id": publicID, "public_id": publicID}})
}

// xsollaLink answers transaction-ID linking. Our transaction id for an order
// is the id its fulfilment will carry, so Xsolla's records, the ledger and AGS
// all show one id; the first answer for an order is stored and repeated.
func (s *Server) xsollaLink(c *fiber.Ctx, src *XsollaSource, n *mapping.XsollaNotification) error {
	ans := fiber.Map{"id": mapping.XsollaFulfillID(src.Name, n.OrderID)}
	if len(src.LinkParameters) > 0 {
		ans["custom_parameters"] = src.LinkParameters
	}
	body, err := s.checked("answers/xsolla_transaction_info", ans)
	if err != nil {
		return err
	}
	stored, err := s.deps.Inbox.Link(c.UserContext(), src.Name, n.OrderID.String(), ans["id"].(string), body)
	if err != nil {
		return storegate.Unavailable(err)
	}
	return answer(c, storegate.Answer{Status: fiber.StatusOK, Body: stored})
}

// xsollaPinCode answers get_pincode with a key from the source's target:
// 200 {"pin_code": "..."}. A repeat gets the first answer again.
func (s *Server) xsollaPinCode(c *fiber.Ctx, src *XsollaSource, n *mapping.XsollaNotification, body []byte) error {
	pc := s.deps.PinCodes[src.Target]
	if pc == nil {
		// A configuration fault, not the player's: Xsolla retries a 5xx for
		// hours, time for an operator to give the source a target with keys.
		return storegate.Unavailable(errors.New("get_pincode: target " + src.Target + " hands out no pin codes"))
	}
	plan := mapping.XsollaPinCodePlan(mapping.XsollaSource{Name: src.Name, Target: src.Target}, n, randomID())
	req := storegate.PinCodeRequest{RequestID: "xsolla." + src.Name + "." + plan.Key, Source: src.Name,
		PlayerID: plan.PlayerID}
	if n.PinCode != nil {
		req.Product, req.DRM = n.PinCode.DigitalContent, n.PinCode.DRM
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.UserDeadline)
	defer cancel()
	code, err := pc.PinCode(ctx, req)
	if err != nil {
		return storegate.Unavailable(err)
	}
	ans, err := s.checked("answers/xsolla_pin_code", fiber.Map{"pin_code": code})
	if err != nil {
		return err
	}
	ev := storegate.Event{Source: src.Name, Type: mapping.XsollaGetPinCode, Key: plan.Key, PlayerID: plan.PlayerID,
		OrderRef: plan.OrderRef, Body: body, ReceivedAt: s.cfg.Now(), Notes: plan.Notes}
	stored, _, err := s.deps.Inbox.Accept(c.UserContext(), ev, nil, storegate.Answer{Status: fiber.StatusOK, Body: ans})
	if err != nil {
		return storegate.Unavailable(err)
	}
	return answer(c, stored)
}

// xsollaCatalog answers partner_side_catalog with every SKU of the catalog,
// without a quantity limit: an item storegate cannot grant is one Xsolla
// should not sell, and the rest is the same for every user.
func (s *Server) xsollaCatalog(c *fiber.Ctx) error {
	skus := s.deps.Catalog.SKUs()
	items := make([]fiber.Map, 0, len(skus))
	for _, e := range skus {
		items = append(items, fiber.Map{"sku": e.SKU, "quantity": nil})
	}
	return s.sendChecked(c, fiber.StatusOK, "answers/xsolla_partner_side_catalog", items)
}

// checked encodes an answer and validates it against its schema: an answer
// that would fail its schema is never sent.
func (s *Server) checked(schema string, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, storegate.Internal(err)
	}
	if err := s.deps.Schemas.Validate(schema, body); err != nil {
		return nil, storegate.Internal(errors.New("answer fails its own schema " + schema + ": " + err.Error()))
	}
	return body, nil
}

func (s *Server) sendChecked(c *fiber.Ctx, status int, schema string, v any) error {
	body, err := s.checked(schema, v)
	if err != nil {
		return err
	}
	return answer(c, storegate.Answer{Status: status, Body: body})
}

func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), fiber.MIMEApplicationJSON)
}

// header adapts Fiber's header lookup to the signing package's.
func header(c *fiber.Ctx) func(string) string {
	return func(name string) string { return c.Get(name) }
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
