package webhooks

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/mapping"
	"storegate/signing"
)

// Distribution partners' carts: the partner fills and changes its user's
// cart, reads it priced (with and without discounts, the bonus items, the
// tax), then orders the whole cart. Carts are priced by the same function
// as orders, so a cart and the order made from it cost the same.
//
// The user token never travels in a URL, where logs would keep it: writes
// carry it in the body (user_token, as orders do), GET and DELETE in the
// X-User-Token header.

// PartnerCarts keeps distribution partners' carts, one per partner and
// player.
type PartnerCarts interface {
	PartnerCart(ctx context.Context, source, playerID string) (storegate.PartnerCart, error)
	EditPartnerCart(ctx context.Context, source, playerID string, edit func(*storegate.PartnerCart) error) (storegate.PartnerCart, error)
	OrderPartnerCart(ctx context.Context, source, playerID string, price func(storegate.PartnerCart) (storegate.PartnerOrder, error),
		note func(storegate.PartnerOrder) storegate.OrderNote) (storegate.PartnerOrder, error)
	// Durable returns once every commit a read before it could have seen
	// is on disk (store.DB.Durable).
	Durable(ctx context.Context) error
}

// userTokenHeader carries the user token of the cart routes without a body.
const userTokenHeader = "X-User-Token"

// maxCartSKUs caps a cart's lines, as the order schema caps an order's.
const maxCartSKUs = 100

func (p *partnerAPI) cartRoutes(app *fiber.App) {
	if p.deps.Carts == nil {
		return
	}
	app.Get("/partners/:source/cart", p.auth("cart_lookup"), p.handleCart)
	app.Put("/partners/:source/cart", p.auth("cart"), p.handleFillCart)
	app.Put("/partners/:source/cart/items/:sku", p.auth("cart_item"), p.handleCartItem)
	app.Delete("/partners/:source/cart/items/:sku", p.auth("cart_item_removal"), p.handleRemoveCartItem)
	app.Post("/partners/:source/cart/order", p.auth("cart_order"), p.handleCartOrder)
}

type cartAnswer struct {
	PlayerID string       `json:"player_id"`
	Currency string       `json:"currency,omitempty"`
	Items    []lineAnswer `json:"items"`
	// Price is absent while the cart has no currency.
	Price     *priceAnswer `json:"price,omitempty"`
	UpdatedAt *time.Time   `json:"updated_at,omitempty"`
}

// priceCart prices a cart as the order made from it would be priced.
func (p *partnerAPI) priceCart(src *PartnerSource, claims signing.Claims, c storegate.PartnerCart) (storegate.PartnerOrder, error) {
	o, err := mapping.PricePartnerOrder(p.deps.Catalog, src.Pricing, c.Currency, claims.Country, c.Items)
	o.Source, o.PlayerID, o.Email = src.Name, c.PlayerID, claims.Email
	return o, err
}

// answerCart writes a cart with its price (priced, when the cart has a
// currency).
func answerCart(c *fiber.Ctx, cart storegate.PartnerCart, priced storegate.PartnerOrder) error {
	a := cartAnswer{PlayerID: cart.PlayerID, Currency: cart.Currency, Items: []lineAnswer{}}
	if !cart.UpdatedAt.IsZero() {
		a.UpdatedAt = &cart.UpdatedAt
	}
	if cart.Currency != "" {
		items, price := pricedAnswer(priced)
		a.Items, a.Price = items, &price
	}
	return c.JSON(a)
}

// editCart applies edit to the user's cart and answers the cart priced. An
// edit, or a cart that can no longer be priced, is refused with nothing
// stored.
func (p *partnerAPI) editCart(c *fiber.Ctx, src *PartnerSource, claims signing.Claims, edit func(*storegate.PartnerCart) error) error {
	var priced storegate.PartnerOrder
	cart, err := p.deps.Carts.EditPartnerCart(c.UserContext(), src.Name, claims.Subject, func(cart *storegate.PartnerCart) error {
		if err := edit(cart); err != nil {
			return err
		}
		if cart.Currency == "" {
			return nil
		}
		var err error
		priced, err = p.priceCart(src, claims, *cart)
		return err
	})
	if err != nil {
		return orderError(err)
	}
	return answerCart(c, cart, priced)
}

func (p *partnerAPI) handleCart(c *fiber.Ctx) error {
	src := p.source(c)
	claims, err := src.player(c.Get(userTokenHeader), userTokenHeader)
	if err != nil {
		return err
	}
	cart, err := p.deps.Carts.PartnerCart(c.UserContext(), src.Name, claims.Subject)
	if err != nil {
		return orderError(err)
	}
	// A partner reading the cart after a write it got no answer for must
	// not see that write before it is on disk.
	if err := p.deps.Carts.Durable(c.UserContext()); err != nil {
		return orderError(err)
	}
	var priced storegate.PartnerOrder
	if cart.Currency != "" {
		if priced, err = p.priceCart(src, claims, cart); err != nil {
			return err
		}
	}
	return answerCart(c, cart, priced)
}

func (p *partnerAPI) handleFillCart(c *fiber.Ctx) error {
	src := p.source(c)
	var req struct {
		UserToken string                `json:"user_token"`
		Currency  string                `json:"currency"`
		Items     []mapping.PartnerItem `json:"items"`
	}
	if err := p.srv.Decode(c, "partners/cart", &req); err != nil {
		return err
	}
	claims, err := src.player(req.UserToken, "user_token")
	if err != nil {
		return err
	}
	for i, it := range req.Items {
		if slices.ContainsFunc(req.Items[:i], func(o mapping.PartnerItem) bool { return o.SKU == it.SKU }) {
			return storegate.FieldError(fmt.Sprintf("sku %q is in the cart twice: give each sku once, with its quantity", it.SKU),
				fmt.Sprintf("items.%d.sku", i))
		}
	}
	return p.editCart(c, src, claims, func(cart *storegate.PartnerCart) error {
		cart.Currency, cart.Items = req.Currency, append([]storegate.PartnerItem{}, req.Items...)
		return nil
	})
}

func (p *partnerAPI) handleCartItem(c *fiber.Ctx) error {
	src := p.source(c)
	var req struct {
		UserToken string `json:"user_token"`
		Quantity  int64  `json:"quantity"`
		Currency  string `json:"currency"`
	}
	if err := p.srv.Decode(c, "partners/cart_item", &req); err != nil {
		return err
	}
	claims, err := src.player(req.UserToken, "user_token")
	if err != nil {
		return err
	}
	sku := c.Params("sku")
	if _, ok := p.deps.Catalog.Lookup(sku); !ok {
		return storegate.FieldError(fmt.Sprintf("unknown sku %q: not in the catalog", sku), "sku")
	}
	return p.editCart(c, src, claims, func(cart *storegate.PartnerCart) error {
		if req.Currency != "" {
			cart.Currency = req.Currency
		}
		if cart.Currency == "" {
			return storegate.FieldError("the cart has no currency yet: give one with its first item", "currency")
		}
		if !src.Pricing.Sells(cart.Currency) {
			return storegate.FieldError("this partner does not sell in "+cart.Currency, "currency")
		}
		i := slices.IndexFunc(cart.Items, func(it storegate.PartnerItem) bool { return it.SKU == sku })
		switch {
		case req.Quantity == 0 && i >= 0:
			cart.Items = slices.Delete(cart.Items, i, i+1)
		case req.Quantity == 0:
		case i >= 0:
			cart.Items[i].Quantity = req.Quantity
		case len(cart.Items) >= maxCartSKUs:
			return storegate.Errorf(storegate.CodeConflict, "the cart holds %d skus, the most it can", maxCartSKUs)
		default:
			if _, _, ok := src.Pricing.Price(p.deps.Catalog, sku, cart.Currency); !ok {
				return storegate.FieldError(fmt.Sprintf("sku %q has no price in %s for this partner", sku, cart.Currency), "sku")
			}
			cart.Items = append(cart.Items, storegate.PartnerItem{SKU: sku, Quantity: req.Quantity})
		}
		return nil
	})
}

// handleRemoveCartItem takes a SKU out of the cart; a SKU not in it is no
// error (DELETE is idempotent).
func (p *partnerAPI) handleRemoveCartItem(c *fiber.Ctx) error {
	src := p.source(c)
	claims, err := src.player(c.Get(userTokenHeader), userTokenHeader)
	if err != nil {
		return err
	}
	sku := c.Params("sku")
	return p.editCart(c, src, claims, func(cart *storegate.PartnerCart) error {
		cart.Items = slices.DeleteFunc(cart.Items, func(it storegate.PartnerItem) bool { return it.SKU == sku })
		return nil
	})
}

// handleCartOrder creates an order of everything in the cart and empties
// the cart, in one transaction; the answer is the order, its price tax
// included. An empty cart is 409.
func (p *partnerAPI) handleCartOrder(c *fiber.Ctx) error {
	src := p.source(c)
	var req struct {
		UserToken string `json:"user_token"`
	}
	if err := p.srv.Decode(c, "partners/cart_order", &req); err != nil {
		return err
	}
	claims, err := src.player(req.UserToken, "user_token")
	if err != nil {
		return err
	}
	// The pools and the wallet are checked on the cart as read now; the
	// payment takes the keys and the debit for good.
	cart, err := p.deps.Carts.PartnerCart(c.UserContext(), src.Name, claims.Subject)
	if err != nil {
		return storegate.Unavailable(err)
	}
	if priced, err := p.priceCart(src, claims, cart); err == nil {
		if err := p.checkKeys(c.UserContext(), src, priced); err != nil {
			return err
		}
		if err := p.checkFunds(c.UserContext(), src, priced, claims.Subject); err != nil {
			return err
		}
	}
	msrc := src.mapping()
	o, err := p.deps.Carts.OrderPartnerCart(c.UserContext(), src.Name, claims.Subject,
		func(cart storegate.PartnerCart) (storegate.PartnerOrder, error) {
			return p.priceCart(src, claims, cart)
		},
		func(o storegate.PartnerOrder) storegate.OrderNote { return mapping.PartnerCreated(msrc, o) })
	if err != nil {
		return orderError(err)
	}
	return c.JSON(orderAnswer(o))
}
