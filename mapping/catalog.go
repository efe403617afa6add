// Package mapping turns senders' payloads into commands: pure functions over
// the payload and the catalog, with deterministic transaction ids.
package mapping

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"storegate"
)

// SKU is one catalog entry: what buying one unit of it grants.
type SKU struct {
	// SKU is the identity senders use (Xsolla's item sku). Required.
	SKU string `yaml:"sku" json:"sku"`
	// Type is coin (currency), durable, consumable, media, optionbox,
	// lootbox, bundle or game_key (one key per unit from the SKU's pool in
	// the embedded ledger). Required.
	Type storegate.ItemType `yaml:"type" json:"type"`
	// Currency and Amount: for coin, the currency credited per unit.
	Currency string `yaml:"currency,omitempty" json:"currency,omitempty"`
	Amount   int64  `yaml:"amount,omitempty" json:"amount,omitempty"`
	// Item is the entitlement's item id for item types. Default: the SKU;
	// a game_key's is always its SKU, which names its pool of keys.
	Item string `yaml:"item,omitempty" json:"item,omitempty"`
	// UseCount is a consumable's uses per unit. Default 1.
	UseCount int64 `yaml:"use_count,omitempty" json:"use_count,omitempty"`
	// Contents lists a bundle's SKUs and quantities per bundle.
	Contents []Content `yaml:"contents,omitempty" json:"contents,omitempty"`
	// Products maps a platform (steam, epic, ...) to its product id for this SKU.
	Products map[string]string `yaml:"products,omitempty" json:"products,omitempty"`
	// Revocation is what a revoke does with what this SKU grants, over the
	// target's rule for its kind: for coin allow_negative,
	// fail_if_negative, custom or none; durable and media revoke, custom or
	// none; consumable and boxes revoke_unused, custom or none; a bundle
	// custom or none, for its contents (over their own). An order's source
	// may override it. Optional; the embedded ledger applies it.
	Revocation string `yaml:"revocation,omitempty" json:"revocation,omitempty"`
	// Name and Prices are shown to distribution partners. Prices are by
	// currency: an ISO 4217 code in its minor units (199 = 1.99 USD), or a
	// virtual currency the catalog grants in whole units (500 CRYSTALS).
	// Optional; a SKU without a price in a currency is not sold in it.
	Name   string           `yaml:"name,omitempty" json:"name,omitempty"`
	Prices map[string]int64 `yaml:"prices,omitempty" json:"prices,omitempty"`
}

// Content is one part of a bundle.
type Content struct {
	SKU      string `yaml:"sku" json:"sku"`
	Quantity int64  `yaml:"quantity,omitempty" json:"quantity,omitempty"`
}

// Catalog maps SKUs to grants. It is immutable after NewCatalog.
type Catalog struct {
	skus     map[string]SKU
	products map[string]map[string]string // platform -> product id -> sku
	// currencies are the virtual currencies coin SKUs grant: the only
	// wallets there can be.
	currencies map[string]bool
}

// NewCatalog checks entries and returns the catalog. Errors name the entry.
func NewCatalog(entries []SKU) (*Catalog, error) {
	c := &Catalog{skus: map[string]SKU{}, products: map[string]map[string]string{}, currencies: map[string]bool{}}
	for i, e := range entries {
		if e.SKU == "" {
			return nil, fmt.Errorf("catalog[%d].sku: required", i)
		}
		if _, dup := c.skus[e.SKU]; dup {
			return nil, fmt.Errorf("catalog[%d].sku: %q listed twice", i, e.SKU)
		}
		if err := checkSKU(e); err != nil {
			return nil, fmt.Errorf("catalog[%d] (%s).%w", i, e.SKU, err)
		}
		if e.Item == "" {
			e.Item = e.SKU
		}
		if e.Type == storegate.ItemConsumable && e.UseCount <= 0 {
			e.UseCount = 1
		}
		c.skus[e.SKU] = e
		if e.Currency != "" {
			c.currencies[e.Currency] = true
		}
		for key, product := range e.Products {
			// Products are keyed by the store platforms' lowercase names
			// (steam, epic, xbox, playstation, twitch), as payloads name them.
			platform := strings.ToLower(key)
			if _, ok := storePlatforms[platform]; !ok {
				return nil, fmt.Errorf("catalog[%d] (%s).products.%s: not a store platform (steam, epic, xbox, playstation, twitch)", i, e.SKU, key)
			}
			if product == "" {
				return nil, fmt.Errorf("catalog[%d] (%s).products.%s: empty product id", i, e.SKU, key)
			}
			if c.products[platform] == nil {
				c.products[platform] = map[string]string{}
			}
			if other, dup := c.products[platform][product]; dup {
				return nil, fmt.Errorf("catalog[%d] (%s).products.%s: product %q already maps to %s", i, e.SKU, platform, product, other)
			}
			c.products[platform][product] = e.SKU
		}
	}
	for _, e := range c.skus {
		for j, part := range e.Contents {
			inner, ok := c.skus[part.SKU]
			if !ok {
				return nil, fmt.Errorf("catalog (%s).contents[%d].sku: unknown sku %q", e.SKU, j, part.SKU)
			}
			if inner.Type == storegate.ItemBundle {
				return nil, fmt.Errorf("catalog (%s).contents[%d].sku: %q is a bundle; bundles do not nest", e.SKU, j, part.SKU)
			}
		}
	}
	// Prices are checked once every SKU is in: a price may be in a virtual
	// currency that a later SKU grants.
	for i, e := range entries {
		for _, cur := range slices.Sorted(maps.Keys(e.Prices)) {
			if err := c.PriceCurrency(cur); err != nil {
				return nil, fmt.Errorf("catalog[%d] (%s).prices.%s: %w", i, e.SKU, cur, err)
			}
			if e.Prices[cur] <= 0 {
				return nil, fmt.Errorf("catalog[%d] (%s).prices.%s: must be positive (minor units: 199 = 1.99; a virtual currency in whole units)", i, e.SKU, cur)
			}
		}
	}
	return c, nil
}

func checkSKU(e SKU) error {
	switch e.Type {
	case storegate.ItemCurrency:
		if e.Currency == "" {
			return fmt.Errorf("currency: required for type coin")
		}
		if !validCurrency(e.Currency) {
			return fmt.Errorf("currency: %q must be 1 to 64 ASCII letters, digits, '_' or '-'", e.Currency)
		}
		if e.Amount <= 0 {
			return fmt.Errorf("amount: must be positive for type coin")
		}
	case storegate.ItemDurable, storegate.ItemConsumable, storegate.ItemMedia, storegate.ItemOptionBox, storegate.ItemLootBox:
		if e.Currency != "" || e.Amount != 0 {
			return fmt.Errorf("currency: only type coin grants currency")
		}
	case storegate.ItemGameKey:
		if e.Currency != "" || e.Amount != 0 {
			return fmt.Errorf("currency: only type coin grants currency")
		}
		if e.Item != "" && e.Item != e.SKU {
			return fmt.Errorf("item: a game_key's item is its SKU, which names its pool of keys")
		}
		if e.UseCount != 0 {
			return fmt.Errorf("use_count: a game_key is one key per unit")
		}
	case storegate.ItemBundle:
		if len(e.Contents) == 0 {
			return fmt.Errorf("contents: a bundle needs contents")
		}
	case "":
		return fmt.Errorf("type: required (coin, durable, consumable, media, optionbox, lootbox, bundle, game_key)")
	default:
		return fmt.Errorf("type: unknown type %q", e.Type)
	}
	if e.Revocation != "" {
		kind := storegate.RevocationKind(e.Type)
		if e.Type == storegate.ItemBundle {
			kind = "" // holds several kinds: only the actions they share
		}
		if actions := storegate.RevocationActions(kind); !slices.Contains(actions, e.Revocation) {
			return fmt.Errorf("revocation: %q is not one of %s for type %s", e.Revocation, strings.Join(actions, ", "), e.Type)
		}
	}
	return nil
}

// validCurrency admits plain ASCII names only: a lookalike ("СRYSTALS"
// with a Cyrillic С, or a name carrying an invisible direction mark) would
// be a second currency that reads like the first.
func validCurrency(name string) bool {
	if len(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}

// PriceCurrency checks that currency can price an order: an ISO 4217 code,
// or a virtual currency the catalog grants, in whole units (MinorUnits).
// A virtual currency named like an ISO code (three capital letters) cannot:
// its amounts would be read in hundredths.
func (c *Catalog) PriceCurrency(currency string) error {
	switch {
	case c.currencies[currency] && IsCurrencyCode(currency):
		return fmt.Errorf("%q is a virtual currency named like an ISO 4217 code: it cannot be a price's currency", currency)
	case c.currencies[currency], IsCurrencyCode(currency):
		return nil
	}
	return fmt.Errorf("%q is neither an ISO 4217 code nor a currency the catalog grants (%s)", currency, strings.Join(c.Currencies(), ", "))
}

// Virtual reports whether currency is one of the catalog's virtual
// currencies rather than money: an order priced in it is paid from the
// player's wallet.
func (c *Catalog) Virtual(currency string) bool {
	return c.currencies[currency] && !IsCurrencyCode(currency)
}

// HasCurrency reports whether a coin SKU of the catalog grants currency.
func (c *Catalog) HasCurrency(currency string) bool { return c.currencies[currency] }

// Currencies lists the currencies the catalog grants, sorted.
func (c *Catalog) Currencies() []string {
	out := make([]string, 0, len(c.currencies))
	for cur := range c.currencies {
		out = append(out, cur)
	}
	sort.Strings(out)
	return out
}

// GameKeys lists the catalog's game_key SKUs, sorted: the pools of keys
// there can be.
func (c *Catalog) GameKeys() []string {
	var out []string
	for _, e := range c.skus {
		if e.Type == storegate.ItemGameKey {
			out = append(out, e.SKU)
		}
	}
	sort.Strings(out)
	return out
}

// KeysOf is how many keys lines hand out, by game_key SKU (a bundle's
// contents included): what their grant takes from the pools.
func KeysOf(lines []storegate.Line) map[string]int64 {
	out := map[string]int64{}
	for _, l := range lines {
		for _, g := range l.Grants {
			if g.Type == storegate.ItemGameKey {
				out[g.Item] += max(g.Quantity, 1)
			}
		}
	}
	return out
}

// Lookup returns a catalog entry.
func (c *Catalog) Lookup(sku string) (SKU, bool) {
	e, ok := c.skus[sku]
	return e, ok
}

// ByProduct returns the SKU a platform's product id maps to.
func (c *Catalog) ByProduct(platform, product string) (SKU, bool) {
	sku, ok := c.products[platform][product]
	if !ok {
		return SKU{}, false
	}
	return c.skus[sku], true
}

// SKUs lists the catalog, sorted by SKU.
func (c *Catalog) SKUs() []SKU {
	out := make([]SKU, 0, len(c.skus))
	for _, e := range c.skus {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SKU < out[j].SKU })
	return out
}

// ErrUnknownSKU means the catalog has no such SKU.
var ErrUnknownSKU = errors.New("unknown sku")

// MaxQuantity caps one line's quantity, so no payload can make a grant
// overflow or explode.
const MaxQuantity = 1_000_000

// Line expands qty units of sku into a line with its grants.
func (c *Catalog) Line(sku string, qty int64) (storegate.Line, error) {
	e, ok := c.skus[sku]
	if !ok {
		return storegate.Line{}, fmt.Errorf("%w %q", ErrUnknownSKU, sku)
	}
	if qty <= 0 || qty > MaxQuantity {
		return storegate.Line{}, fmt.Errorf("quantity %d outside 1..%d", qty, MaxQuantity)
	}
	line := storegate.Line{SKU: sku, Quantity: qty, Type: e.Type}
	parts := []Content{{SKU: sku, Quantity: 1}}
	if e.Type == storegate.ItemBundle {
		line.Bundle = true
		parts = e.Contents
	}
	for _, part := range parts {
		n := part.Quantity
		if n <= 0 {
			n = 1
		}
		g, err := grant(c.skus[part.SKU], qty*n)
		if err != nil {
			return storegate.Line{}, err
		}
		if e.Type == storegate.ItemBundle && e.Revocation != "" {
			// The bundle is what was sold: its action is its contents'.
			g.Revocation = e.Revocation
		}
		line.Grants = append(line.Grants, g)
	}
	return line, nil
}

// grant is what qty units of a non-bundle entry give: currency, or one
// entitlement holding the quantity (a consumable's quantity is its uses).
func grant(e SKU, qty int64) (storegate.Grant, error) {
	per := e.Amount
	if e.Type == storegate.ItemConsumable {
		per = e.UseCount
	} else if e.Type != storegate.ItemCurrency {
		per = 1
	}
	if qty > math.MaxInt64/per/1000 {
		return storegate.Grant{}, fmt.Errorf("sku %s: quantity %d overflows", e.SKU, qty)
	}
	if e.Type == storegate.ItemCurrency {
		return storegate.Grant{Currency: e.Currency, Amount: per * qty, Revocation: e.Revocation}, nil
	}
	return storegate.Grant{Item: e.Item, Type: e.Type, Quantity: per * qty, Revocation: e.Revocation}, nil
}
