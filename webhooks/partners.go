package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
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
	"storegate/store"
)

// Distribution partners (the Digital Distribution Hub model): a partner
// checks its user (users/token), shows the catalog, creates an order (priced
// here, with its discounts), charges its user, then notifies the payment;
// a refunded or failed payment is cancelled. An order must be created here
// before it can be paid: the payment names it (purchase.order_id) and must
// match its amount and currency.

// PartnerSource is one configured distribution partner. Its AllowIPs, the
// partner's registered server addresses, are required: with none, every
// call is refused. Its Verifier checks Standard Webhooks signatures; when
// nil, BasicKeys authenticate instead.
type PartnerSource struct {
	Source
	// BasicKeys are the accepted HTTP Basic passwords (any of them, for
	// rotation); the user name is the source's name.
	BasicKeys []string
	// TokenKeys sign user tokens (the first) and verify them (any).
	// Required; see PartnerTokenKey.
	TokenKeys [][]byte
	// TokenTTL is a user token's lifetime. Default DefaultTokenTTL.
	TokenTTL time.Duration
	// Pricing is the partner's price list on top of the catalog's prices.
	Pricing mapping.PartnerPricing

	tokens *signing.JWT
}

// partnerKind admits partners' requests. Content types are left to
// server.Decode: the catalog and order lookups carry no body.
var partnerKind = &kind{registered: true, problem: standardProblem}

// PartnerTokenKey derives the key that signs a partner's user tokens from
// one of its secrets, so the token key is never the key that authenticates
// the partner itself.
func PartnerTokenKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("storegate partner user token v1"))
	return m.Sum(nil)
}

// PartnerOrders keeps distribution partners' orders and their payments.
type PartnerOrders interface {
	CreatePartnerOrder(ctx context.Context, o storegate.PartnerOrder, noteFor func(id int64) storegate.OrderNote) (storegate.PartnerOrder, error)
	PartnerOrder(ctx context.Context, source string, id int64) (storegate.PartnerOrder, error)
	PartnerOrderByPayment(ctx context.Context, source string, paymentID int64) (storegate.PartnerOrder, error)
	PayPartnerOrder(ctx context.Context, ev storegate.Event, orderID int64, cmds []storegate.Command,
		answer func(paymentID int64) []byte) (storegate.Answer, bool, error)
	CancelPartnerPayment(ctx context.Context, ev storegate.Event, orderID int64, cmds []storegate.Command, answer []byte) error
	// Durable returns once every commit a read before it could have seen
	// is on disk (store.DB.Durable).
	Durable(ctx context.Context) error
}

type partnerAPI struct {
	*handlers
	sources map[string]*PartnerSource
}

// DefaultTokenTTL is a partner user token's lifetime unless configured:
// long enough to fill a cart and pay, short enough that a leaked token dies.
const DefaultTokenTTL = 15 * time.Minute

func (h *handlers) partnerRoutes(app *fiber.App) {
	p := &partnerAPI{handlers: h, sources: map[string]*PartnerSource{}}
	for i := range h.deps.Partners {
		src := &h.deps.Partners[i]
		src.prepare(h.srv, partnerKind)
		if src.TokenTTL <= 0 {
			src.TokenTTL = DefaultTokenTTL
		}
		src.basic = server.HashTokens(src.BasicKeys)
		if len(src.TokenKeys) > 0 {
			src.tokens, _ = signing.NewJWT(src.TokenKeys, signing.JWTConfig{Issuer: tokenIssuer,
				Audience: "partner:" + src.Name, Now: h.srv.Clock()})
		}
		p.sources[src.Name] = src
	}
	app.Post("/partners/:source/users/token", p.auth("user_token"), p.handleUserToken)
	app.Get("/partners/:source/catalog", p.auth("catalog"), p.handleCatalog)
	app.Post("/partners/:source/orders", p.auth("order"), p.handleCreateOrder)
	app.Get("/partners/:source/orders/:orderId", p.auth("order_lookup"), p.handleOrder)
	app.Post("/partners/:source/payments", p.auth("payment"), p.handlePay)
	app.Post("/partners/:source/cancellations", p.auth("cancellation"), p.handleCancel)
	p.cartRoutes(app)
}

const tokenIssuer = "storegate"

// auth admits a request to a partner route (admit), naming it typ.
func (p *partnerAPI) auth(typ string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if _, err := admit(p.handlers, c, p.sources, typ); err != nil {
			return err
		}
		return c.Next()
	}
}

func (p *partnerAPI) source(c *fiber.Ctx) *PartnerSource { return p.sources[c.Params("source")] }

func (p *partnerAPI) handleUserToken(c *fiber.Ctx) error {
	src := p.source(c)
	var req struct {
		User struct {
			ID      string `json:"id"`
			Email   string `json:"email"`
			Country string `json:"country"`
		} `json:"user"`
	}
	if err := p.srv.Decode(c, "partners/user_token", &req); err != nil {
		return err
	}
	if len(src.TokenKeys) == 0 {
		return storegate.Internal(errors.New("partner " + src.Name + " has no token key"))
	}
	now := p.srv.Now()
	claims := signing.Claims{Issuer: tokenIssuer, Subject: req.User.ID, Email: req.User.Email, Country: strings.ToUpper(req.User.Country),
		Audience: signing.Audience{"partner:" + src.Name}, IssuedAt: now.Unix(), ExpiresAt: now.Add(src.TokenTTL).Unix()}
	if req.User.ID == "" {
		// A buyer known only by e-mail (user.id null or absent): nobody to
		// check in the game.
		claims.Subject, claims.Scope = req.User.Email, signing.ScopeBuyer
	} else if err := p.checkPlayer(c, src.Target, req.User.ID); err != nil {
		return err
	}
	token, err := signing.SignJWT(src.TokenKeys[0], claims)
	if err != nil {
		return storegate.Internal(err)
	}
	return c.JSON(fiber.Map{"token": token, "expires_at": time.Unix(claims.ExpiresAt, 0).UTC()})
}

// checkPlayer refuses a player the target says does not exist. A target
// that cannot check users (none configured) does not stop the partner: the
// Digital Distribution Hub checks a user only where the game has a user
// check.
func (p *partnerAPI) checkPlayer(c *fiber.Ctx, target, playerID string) error {
	exists, err := p.userExists(c.UserContext(), target, playerID)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return nil
	case err != nil:
		return storegate.Unavailable(err)
	case !exists:
		return &storegate.Error{Code: storegate.CodeInvalidUser, Message: "no such player", Fields: []string{"user.id"}}
	}
	return nil
}

func (p *partnerAPI) handleCatalog(c *fiber.Ctx) error {
	src := p.source(c)
	currency := c.Query("currency")
	if currency != "" && p.deps.Catalog.PriceCurrency(currency) != nil {
		return storegate.FieldError("currency must be an ISO 4217 code like USD or a currency the catalog grants", "currency")
	}
	return c.JSON(fiber.Map{"items": mapping.PartnerCatalog(p.deps.Catalog, src.Pricing, currency)})
}

func (p *partnerAPI) handleCreateOrder(c *fiber.Ctx) error {
	src := p.source(c)
	var req struct {
		UserToken string                `json:"user_token"`
		Currency  string                `json:"currency"`
		Items     []mapping.PartnerItem `json:"items"`
	}
	if err := p.srv.Decode(c, "partners/order", &req); err != nil {
		return err
	}
	claims, err := src.player(req.UserToken, "user_token")
	if err != nil {
		return err
	}
	o, err := mapping.PricePartnerOrder(p.deps.Catalog, src.Pricing, req.Currency, claims.Country, req.Items)
	if err != nil {
		return err
	}
	if err := p.checkKeys(c.UserContext(), src, o); err != nil {
		return err
	}
	if err := p.checkFunds(c.UserContext(), src, o, claims.Subject); err != nil {
		return err
	}
	o.Source, o.PlayerID, o.Email = src.Name, claims.Subject, claims.Email
	msrc := src.mapping()
	o, err = p.deps.Orders.CreatePartnerOrder(c.UserContext(), o, func(id int64) storegate.OrderNote {
		o.ID = id
		return mapping.PartnerCreated(msrc, o)
	})
	if err != nil {
		return storegate.Unavailable(err)
	}
	return c.JSON(orderAnswer(o))
}

// player reads a user token for a route that puts in-game items in a
// player's inventory: a forged or expired token is 401, a buyer's (no
// player) 403. field names where the token came from.
func (src *PartnerSource) player(token, field string) (signing.Claims, error) {
	if src.tokens == nil {
		return signing.Claims{}, storegate.Internal(errors.New("partner " + src.Name + " has no token key"))
	}
	claims, err := src.tokens.Verify(token)
	if err != nil {
		return claims, &storegate.Error{Code: storegate.CodeUnauthorized, Message: field + " is invalid or expired: get a new one from users/token",
			Fields: []string{field}}
	}
	if claims.Scope == signing.ScopeBuyer {
		return claims, &storegate.Error{Code: storegate.CodeForbidden,
			Message: "this " + field + " names no player: in-game items need users/token with user.id", Fields: []string{field}}
	}
	return claims, nil
}

func (p *partnerAPI) handleOrder(c *fiber.Ctx) error {
	src := p.source(c)
	id, err := strconv.ParseInt(c.Params("orderId"), 10, 64)
	if err != nil || id <= 0 {
		return storegate.Errorf(storegate.CodeNotFound, "no such order")
	}
	o, err := p.deps.Orders.PartnerOrder(c.UserContext(), src.Name, id)
	if err != nil {
		return orderError(err)
	}
	// A partner checking a pay or cancel it got no answer for must not see
	// "paid" or "cancelled" before that is on disk.
	if err := p.deps.Orders.Durable(c.UserContext()); err != nil {
		return orderError(err)
	}
	ans := orderAnswer(o)
	if o.Status != storegate.PartnerOrderCreated {
		if ans.Keys, err = p.orderKeys(c.UserContext(), src, o.ID); err != nil {
			return storegate.Unavailable(err)
		}
	}
	return c.JSON(ans)
}

// partnerPayment is the DDH payment notification as storegate reads it.
type partnerPayment struct {
	Payment struct {
		GeotypeID       mapping.Int     `json:"geotype_id"`
		Amount          json.Number     `json:"amount"`
		Currency        string          `json:"currency"`
		PSTransactionID json.RawMessage `json:"ps_transaction_id"`
	} `json:"payment"`
	Purchase struct {
		OrderID mapping.Int `json:"order_id"`
	} `json:"purchase"`
	User struct {
		ID mapping.ID `json:"id"`
	} `json:"user"`
}

// handlePay grants a paid order. Checks, in order: the order exists and is
// this partner's (404), it was created for this user (400 INVALID_USER), the
// currency and amount are the order's (422 INCORRECT_AMOUNT); then, in one
// transaction, a repeat of this notification gets the first answer (the
// same payment_id) and another payment of a paid order gets 409.
func (p *partnerAPI) handlePay(c *fiber.Ctx) error {
	src := p.source(c)
	var req partnerPayment
	if err := p.srv.Decode(c, "partners/payment", &req); err != nil {
		return err
	}
	o, err := p.deps.Orders.PartnerOrder(c.UserContext(), src.Name, int64(req.Purchase.OrderID))
	if err != nil {
		return orderError(err, "purchase.order_id")
	}
	if string(req.User.ID) != o.PlayerID {
		return &storegate.Error{Code: storegate.CodeInvalidUser, Message: "the order was created for another user", Fields: []string{"user.id"}}
	}
	if req.Payment.Currency != o.Currency {
		return &storegate.Error{Code: storegate.CodeIncorrectAmount, Message: "currency differs from the order's (" + o.Currency + ")",
			Fields: []string{"payment.currency"}}
	}
	if amount, ok := mapping.ParseAmount(req.Payment.Amount.String(), o.Currency); !ok || amount != o.Amount {
		return &storegate.Error{Code: storegate.CodeIncorrectAmount,
			Message: "amount differs from the order's (" + mapping.FormatAmount(o.Amount, o.Currency) + " " + o.Currency + ")",
			Fields:  []string{"payment.amount"}}
	}
	// ps_transaction_id is a string or a number; either way its text.
	psTxn := strings.Trim(string(req.Payment.PSTransactionID), `"`)
	plan, err := mapping.PartnerPay(src.mapping(), o, psTxn, p.deps.Catalog, p.srv.Now())
	if err != nil {
		return err
	}
	ev := storegate.Event{Source: src.Name, Type: "payment", Key: plan.Key, PlayerID: plan.PlayerID, OrderRef: plan.OrderRef,
		Body: bytes.Clone(c.BodyRaw()), ReceivedAt: p.srv.Now()}
	stored, dup, err := p.deps.Orders.PayPartnerOrder(c.UserContext(), ev, o.ID, plan.Commands, func(paymentID int64) []byte {
		b, _ := json.Marshal(fiber.Map{"payment_id": paymentID})
		return b
	})
	if err != nil {
		return orderError(err)
	}
	if dup && p.metrics != nil {
		p.metrics.Duplicate(src.Name, "payment")
	}
	if !dup {
		p.deps.Notify()
	}
	// Committed: a failure to read the keys is a 503, and the partner's
	// retry is a repeat that gets the same payment and its keys.
	if stored, err = p.withKeys(c, src, o.ID, stored); err != nil {
		return storegate.Unavailable(err)
	}
	return server.Answer(c, stored)
}

// handleCancel revokes a paid order. An unknown payment is 404; a payment
// cancelled before, or an order that is not paid, is 409 (both decided in
// the write).
func (p *partnerAPI) handleCancel(c *fiber.Ctx) error {
	src := p.source(c)
	var req struct {
		PaymentID mapping.Int `json:"payment_id"`
	}
	if err := p.srv.Decode(c, "partners/cancellation", &req); err != nil {
		return err
	}
	o, err := p.deps.Orders.PartnerOrderByPayment(c.UserContext(), src.Name, int64(req.PaymentID))
	if err != nil {
		return orderError(err, "payment_id")
	}
	// "Already cancelled" (409) comes from the write, never from the read
	// above: the read may see a cancellation not yet flushed to disk, and a
	// 409 would tell the partner it is done. The write's answer waits for
	// every commit before it to be durable (store: logsync.go).
	plan := mapping.PartnerCancel(src.mapping(), o, p.srv.Now())
	body, _ := json.Marshal(fiber.Map{"payment_id": o.PaymentID, "status": storegate.PartnerOrderCancelled})
	ev := storegate.Event{Source: src.Name, Type: "cancellation", Key: plan.Key, PlayerID: plan.PlayerID, OrderRef: plan.OrderRef,
		Body: bytes.Clone(c.BodyRaw()), ReceivedAt: p.srv.Now()}
	if err := p.deps.Orders.CancelPartnerPayment(c.UserContext(), ev, o.ID, plan.Commands, body); err != nil {
		return orderError(err)
	}
	p.deps.Notify()
	return server.Answer(c, storegate.Answer{Status: fiber.StatusOK, Body: body})
}

// refusals word the partner order state machine's refusals (store:
// partners.go) for the partner.
var refusals = []struct {
	err     error
	code    storegate.Code
	message string
}{
	{store.ErrNoPartnerOrder, storegate.CodeNotFound, "no such order"},
	{store.ErrNoPayment, storegate.CodeNotFound, "no such payment"},
	{store.ErrPaid, storegate.CodeConflict, "order is already paid"},
	{store.ErrCancelled, storegate.CodeConflict, "payment is already cancelled"},
	{store.ErrNotPaid, storegate.CodeConflict, "order is not paid"},
	{store.ErrEmptyCart, storegate.CodeConflict, "the cart is empty: put items in it first"},
}

// orderError answers the store's refusals with their code, naming fields
// (the request's fields a "not found" points at), and turns anything else
// into 503: not committed, or not known to be.
func orderError(err error, fields ...string) error {
	for _, r := range refusals {
		if errors.Is(err, r.err) {
			e := &storegate.Error{Code: r.code, Message: r.message}
			if r.code == storegate.CodeNotFound {
				e.Fields = fields
			}
			return e
		}
	}
	var e *storegate.Error
	if errors.As(err, &e) {
		return e
	}
	return storegate.Unavailable(err)
}

// priceAnswer is an order's or a cart's price: amount is what the partner
// charges, tax included; amount_without_tax the discounted lines;
// amount_without_discount the lines' list prices.
type priceAnswer struct {
	Amount                string    `json:"amount"`
	AmountWithoutDiscount string    `json:"amount_without_discount"`
	AmountWithoutTax      string    `json:"amount_without_tax"`
	Tax                   taxAnswer `json:"tax"`
	Currency              string    `json:"currency"`
}

// taxAnswer is the tax of a price: its rate in percent and its amount.
type taxAnswer struct {
	Percent string `json:"percent"`
	Amount  string `json:"amount"`
}

type lineAnswer struct {
	SKU             string `json:"sku"`
	Name            string `json:"name,omitempty"`
	Quantity        int64  `json:"quantity"`
	UnitPrice       string `json:"unit_price"`
	DiscountPercent int64  `json:"discount_percent,omitempty"`
	Amount          string `json:"amount"`
	Bonus           bool   `json:"bonus,omitempty"`
}

type partnerOrderAnswer struct {
	OrderID   int64                        `json:"order_id"`
	Status    storegate.PartnerOrderStatus `json:"status"`
	PlayerID  string                       `json:"player_id"`
	Currency  string                       `json:"currency"`
	Items     []lineAnswer                 `json:"items"`
	Price     priceAnswer                  `json:"price"`
	PaymentID int64                        `json:"payment_id,omitempty"`
	// Keys are the game keys the order's grant took, once it is paid.
	Keys      []keyAnswer `json:"keys,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// orderAnswer is an order as partners read it: amounts as decimal strings
// in major units, as DDH and Xsolla write them.
func orderAnswer(o storegate.PartnerOrder) partnerOrderAnswer {
	items, price := pricedAnswer(o)
	return partnerOrderAnswer{OrderID: o.ID, Status: o.Status, PlayerID: o.PlayerID, Currency: o.Currency, PaymentID: o.PaymentID,
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, Items: items, Price: price}
}

// pricedAnswer writes the lines and the price of an order or a cart.
func pricedAnswer(o storegate.PartnerOrder) ([]lineAnswer, priceAnswer) {
	cur := o.Currency
	items := []lineAnswer{}
	for _, l := range o.Lines {
		items = append(items, lineAnswer{SKU: l.SKU, Name: l.Name, Quantity: l.Quantity, UnitPrice: mapping.FormatAmount(l.UnitPrice, cur),
			DiscountPercent: l.DiscountPercent, Amount: mapping.FormatAmount(l.Amount, cur), Bonus: l.Bonus})
	}
	return items, priceAnswer{Amount: mapping.FormatAmount(o.Amount, cur), AmountWithoutDiscount: mapping.FormatAmount(o.AmountWithoutDiscount, cur),
		AmountWithoutTax: mapping.FormatAmount(o.Amount-o.Tax, cur),
		Tax:              taxAnswer{Percent: mapping.FormatPercent(o.TaxRate), Amount: mapping.FormatAmount(o.Tax, cur)}, Currency: cur}
}

// mapping is the source as the mapping package reads it.
func (src *PartnerSource) mapping() mapping.PartnerSource {
	return mapping.PartnerSource{Name: src.Name, Target: src.Target, Receipts: src.Receipts}
}
