package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/ledger"
	"storegate/mapping"
	"storegate/schemas"
)

// economyBodyLimit caps the economy routes' bodies: a handful of fields.
const economyBodyLimit = 4 << 10

// Param is a path parameter, unescaped: entitlement ids hold '/', sent as
// %2F. Fiber leaves parameters escaped.
func Param(c *fiber.Ctx, name string) (string, error) {
	v, err := url.PathUnescape(c.Params(name))
	if err != nil || v == "" || len(v) > 256 {
		return "", storegate.FieldError(name+" is not a valid path parameter", name)
	}
	for _, r := range v {
		if r < ' ' || r == 0x7f {
			return "", storegate.FieldError(name+" holds control characters", name)
		}
	}
	// Fiber's parameters point into a buffer reused by the next request;
	// the value may be kept (a cache of known players), so it is copied.
	return strings.Clone(v), nil
}

// economyBody checks a write's body (size, JSON, its schema) and decodes it.
func (h *handlers) economyBody(c *fiber.Ctx, schema string, into any) error {
	if len(c.BodyRaw()) > economyBodyLimit {
		return storegate.Errorf(storegate.CodeTooLarge, "request body is larger than %d bytes", economyBodyLimit)
	}
	return h.srv.Decode(c, schema, into)
}

// idempotencyKey is the Idempotency-Key header every economy write needs.
func idempotencyKey(c *fiber.Ctx) (string, error) {
	k := c.Get("Idempotency-Key")
	if !ledger.ValidKey(k) {
		return "", storegate.FieldError("the Idempotency-Key header is required: 1 to 128 printable characters without '/' or spaces", "Idempotency-Key")
	}
	return k, nil
}

// economyRead is how every economy route starts: the ledger and the player.
func (h *handlers) economyRead(c *fiber.Ctx) (Economy, string, error) {
	eco, err := h.economy()
	if err != nil {
		return nil, "", err
	}
	player, err := Param(c, "playerId")
	return eco, player, err
}

// economyWrite adds what every write needs: its second path parameter
// (currency, entitlement) and the idempotency key.
func (h *handlers) economyWrite(c *fiber.Ctx, name string) (eco Economy, player, value, key string, err error) {
	if eco, player, err = h.economyRead(c); err != nil {
		return
	}
	if value, err = Param(c, name); err != nil {
		return
	}
	key, err = idempotencyKey(c)
	return
}

func (h *handlers) knownCurrency(currency string) error {
	return KnownCurrency(h.deps.Catalog, currency)
}

// KnownCurrency refuses a currency no coin SKU of the catalog grants.
// Wallets are made on first use, so any other name, a lookalike of a real
// one included, would open a wallet no purchase ever fills.
func KnownCurrency(cat *mapping.Catalog, currency string) error {
	if cat != nil && cat.HasCurrency(currency) {
		return nil
	}
	known := "none"
	if cat != nil && len(cat.Currencies()) > 0 {
		known = strings.Join(cat.Currencies(), ", ")
	}
	return storegate.FieldError("currency is not one the catalog grants (it grants: "+known+")", "currency")
}

// writeError turns a ledger write's failure into its answer: the ledger's
// own refusals as they are, anything else as 503, since a retry with the
// same idempotency key is always safe.
func writeError(err error) error {
	var e *storegate.Error
	if errors.As(err, &e) {
		return e
	}
	return storegate.Unavailable(err)
}

func (h *handlers) handleAdjustment(c *fiber.Ctx) error {
	eco, player, currency, key, err := h.economyWrite(c, "currency")
	if err != nil {
		return err
	}
	if err := h.knownCurrency(currency); err != nil {
		return err
	}
	var body AdjustmentRequest
	if err := h.economyBody(c, "ledger/adjustment", &body); err != nil {
		return err
	}
	res, err := Adjust(c.UserContext(), h.srv.Schemas(), eco, h.deps.Catalog, ledger.Adjustment{PlayerID: player, Currency: currency,
		Amount: body.Amount, Platform: body.Platform, Reason: body.Reason, Actor: body.Actor, Key: key, AllowNegative: body.AllowNegative})
	if err != nil {
		return err
	}
	status := fiber.StatusCreated
	if res.Replayed {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(res)
}

// AdjustmentRequest is a manual update as schemas/ledger/adjustment.json
// has it.
type AdjustmentRequest struct {
	Amount        int64              `json:"amount"`
	Platform      storegate.Platform `json:"platform,omitempty"`
	Reason        string             `json:"reason"`
	Actor         string             `json:"actor"`
	AllowNegative bool               `json:"allow_negative"`
}

// Adjuster makes manual updates.
type Adjuster interface {
	Adjust(ctx context.Context, a ledger.Adjustment) (ledger.AdjustmentResult, error)
}

// Adjust is the one manual update of a wallet, for the admin route and the
// console: the currency must be the catalog's, the update must pass the
// admin route's schema (whatever form it came in), and the ledger applies
// it once per key.
func Adjust(ctx context.Context, set *schemas.Set, eco Adjuster, cat *mapping.Catalog, a ledger.Adjustment) (ledger.AdjustmentResult, error) {
	if err := KnownCurrency(cat, a.Currency); err != nil {
		return ledger.AdjustmentResult{}, err
	}
	if !ledger.ValidKey(a.Key) {
		return ledger.AdjustmentResult{}, storegate.FieldError("the idempotency key is 1 to 128 printable characters without '/' or spaces", "Idempotency-Key")
	}
	body, err := json.Marshal(AdjustmentRequest{Amount: a.Amount, Platform: a.Platform, Reason: a.Reason, Actor: a.Actor, AllowNegative: a.AllowNegative})
	if err != nil {
		return ledger.AdjustmentResult{}, storegate.Internal(err)
	}
	if err := set.Validate("ledger/adjustment", body); err != nil {
		return ledger.AdjustmentResult{}, err
	}
	res, err := eco.Adjust(ctx, a)
	if err != nil {
		return res, writeError(err)
	}
	return res, nil
}

// query parsing: each bad value is an INVALID_PARAMETER naming its parameter.

func queryTime(c *fiber.Ctx, name string) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, storegate.FieldError(name+" must be an RFC 3339 time like 2026-11-01T12:00:00Z", name)
	}
	return t, nil
}

// queryWindow is the time window (since, until) and the page of a listing.
func queryWindow(c *fiber.Ctx) (since, until time.Time, page ledger.Page, err error) {
	if since, err = queryTime(c, "since"); err != nil {
		return
	}
	if until, err = queryTime(c, "until"); err != nil {
		return
	}
	page, err = queryPage(c)
	return
}

func queryPage(c *fiber.Ctx) (ledger.Page, error) {
	var p ledger.Page
	for name, dst := range map[string]*int{"limit": &p.Limit, "offset": &p.Offset} {
		v := c.Query(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || (name == "limit" && (n < 1 || n > 1000)) {
			return p, storegate.FieldError(name+" must be a whole number (limit 1 to 1000)", name)
		}
		*dst = n
	}
	return p, nil
}

func queryEnum(c *fiber.Ctx, name string, allowed ...string) (string, error) {
	v := c.Query(name)
	if v == "" {
		return "", nil
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", storegate.FieldError(name+" must be one of "+strings.Join(allowed, ", "), name)
}

// listAnswer is a page of a listing: next_offset is there when more follow.
func listAnswer(player, key string, items any, more bool, page ledger.Page) fiber.Map {
	m := fiber.Map{"player_id": player, key: items}
	if more {
		limit := page.Limit
		if limit == 0 {
			limit = 100
		}
		m["next_offset"] = page.Offset + limit
	}
	return m
}

func (h *handlers) handleHistory(c *fiber.Ctx) error {
	eco, player, err := h.economyRead(c)
	if err != nil {
		return err
	}
	q := ledger.HistoryQuery{Currency: c.Query("currency"), TransactionID: c.Query("transaction_id")}
	if q.Currency != "" {
		if err := h.knownCurrency(q.Currency); err != nil {
			return err
		}
	}
	if v := c.Query("platform"); v != "" {
		p, err := storegate.ParsePlatform(v)
		if err != nil {
			return storegate.FieldError(err.Error(), "platform")
		}
		q.Platform = p
	}
	if q.Kind, err = queryEnum(c, "kind", "fulfill", "revoke", "spend", "adjustment"); err != nil {
		return err
	}
	if q.Since, q.Until, q.Page, err = queryWindow(c); err != nil {
		return err
	}
	entries, more, err := eco.History(c.UserContext(), player, q)
	if err != nil {
		return storegate.Internal(err)
	}
	return c.JSON(listAnswer(player, "entries", entries, more, q.Page))
}

func (h *handlers) handleRevocations(c *fiber.Ctx) error {
	eco, player, err := h.economyRead(c)
	if err != nil {
		return err
	}
	q, err := revocationQuery(c)
	if err != nil {
		return err
	}
	revs, more, err := eco.Revocations(c.UserContext(), player, q)
	if err != nil {
		return storegate.Internal(err)
	}
	return c.JSON(listAnswer(player, "revocations", revs, more, q.Page))
}

// handleAllRevocations is the revocation history across players, with the
// filters and pages of one player's.
func (h *handlers) handleAllRevocations(c *fiber.Ctx) error {
	eco, err := h.economy()
	if err != nil {
		return err
	}
	q, err := revocationQuery(c)
	if err != nil {
		return err
	}
	revs, more, err := eco.AllRevocations(c.UserContext(), q)
	if err != nil {
		return storegate.Internal(err)
	}
	m := listAnswer("", "revocations", revs, more, q.Page)
	delete(m, "player_id")
	return c.JSON(m)
}

// handleRevocation is one revocation record, by its id (the revoke's
// transaction id).
func (h *handlers) handleRevocation(c *fiber.Ctx) error {
	eco, err := h.economy()
	if err != nil {
		return err
	}
	id, err := Param(c, "id")
	if err != nil {
		return err
	}
	rev, found, err := eco.Revocation(c.UserContext(), id)
	if err != nil {
		return storegate.Internal(err)
	}
	if !found {
		return storegate.Errorf(storegate.CodeNotFound, "no revocation %q", id)
	}
	return c.JSON(rev)
}

// revocationQuery reads the revocation history's filters and page.
func revocationQuery(c *fiber.Ctx) (q ledger.RevocationQuery, err error) {
	q.TransactionID = c.Query("transaction_id")
	if q.Source, err = queryEnum(c, "source", "ORDER", "DLC", "IAP", "OTHER"); err != nil {
		return q, err
	}
	if q.Status, err = queryEnum(c, "status", ledger.StatusSuccess, ledger.StatusFail); err != nil {
		return q, err
	}
	q.Since, q.Until, q.Page, err = queryWindow(c)
	return q, err
}
