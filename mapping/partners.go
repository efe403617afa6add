package mapping

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"storegate"
)

// Distribution partners (the Digital Distribution Hub model): a partner
// prices an order with storegate, charges its user, then notifies the
// payment. Prices are integers in the currency's minor units (199 = 1.99 USD),
// and in whole units for a virtual currency of the catalog (500 CRYSTALS),
// whose orders are paid from the player's wallet.

// PartnerPricing is one partner's price list: the catalog's prices, with
// the partner's own prices and discounts on top.
type PartnerPricing struct {
	// Currencies the partner sells in. Empty: every currency the catalog or
	// the partner's prices name.
	Currencies []string
	// Prices overrides the catalog's price of a SKU in a currency.
	Prices map[string]map[string]int64
	// Discounts are percentages (0..100) off a SKU's price; the key "*"
	// applies to every SKU without its own entry.
	Discounts map[string]int64
	// Taxes are added on top of the discounted amount. None: no tax.
	Taxes PartnerTaxes
	// Bonuses add free items to the orders that qualify, in this order.
	Bonuses []PartnerBonus
}

// PartnerTaxes are a partner's tax rates in millionths of the amount
// (19% = 190000), so that rates like 8.875% stay exact.
type PartnerTaxes struct {
	// Countries are the rates by the user's country (ISO 3166-1 alpha-2,
	// as users/token's user.country gave it).
	Countries map[string]int64
	// Currencies are the rates by the order's currency, for a user whose
	// country is unknown or has no rate of its own. The only rate of a
	// virtual currency: country rates tax money, not wallet currency.
	Currencies map[string]int64
}

// Rate is the tax rate of an order in currency for a user in country. An
// order in a virtual currency is taxed only at that currency's own rate
// (none unless configured).
func (t PartnerTaxes) Rate(country, currency string, virtual bool) int64 {
	if r, ok := t.Countries[country]; ok && country != "" && !virtual {
		return r
	}
	return t.Currencies[currency]
}

// PartnerBonus adds Quantity of SKU, free, to an order that meets every
// condition it sets (at least one): its amount (discounted, before tax)
// reaches MinAmount in the order's currency, and it holds WithSKU.
type PartnerBonus struct {
	SKU      string
	Quantity int64
	// MinAmount is in minor units by currency; a currency without an
	// entry never qualifies.
	MinAmount map[string]int64
	WithSKU   string
}

func (b PartnerBonus) applies(o storegate.PartnerOrder) bool {
	if b.MinAmount != nil {
		min, ok := b.MinAmount[o.Currency]
		if !ok || o.Amount < min {
			return false
		}
	}
	if b.WithSKU != "" && !slices.ContainsFunc(o.Lines, func(l storegate.PricedLine) bool { return l.SKU == b.WithSKU }) {
		return false
	}
	return b.MinAmount != nil || b.WithSKU != ""
}

// Price is a SKU's unit price in minor units, its discount and whether it
// is sold in currency at all.
func (p PartnerPricing) Price(cat *Catalog, sku, currency string) (unit, discount int64, ok bool) {
	if !p.Sells(currency) {
		return 0, 0, false
	}
	e, found := cat.Lookup(sku)
	if !found {
		return 0, 0, false
	}
	unit, ok = p.Prices[sku][currency]
	if !ok {
		unit, ok = e.Prices[currency]
	}
	if !ok || unit <= 0 {
		return 0, 0, false
	}
	discount, own := p.Discounts[sku]
	if !own {
		discount = p.Discounts["*"]
	}
	return unit, discount, true
}

// Sells reports whether the partner sells in currency.
func (p PartnerPricing) Sells(currency string) bool {
	if len(p.Currencies) == 0 {
		return true
	}
	for _, c := range p.Currencies {
		if c == currency {
			return true
		}
	}
	return false
}

// CatalogEntry is one SKU as a partner's storefront shows it.
type CatalogEntry struct {
	SKU    string              `json:"sku"`
	Name   string              `json:"name"`
	Type   storegate.ItemType  `json:"type"`
	Prices []CatalogEntryPrice `json:"prices"`
}

// CatalogEntryPrice is a SKU's price in one currency, as decimal strings.
type CatalogEntryPrice struct {
	Currency              string `json:"currency"`
	Amount                string `json:"amount"`
	AmountWithoutDiscount string `json:"amount_without_discount"`
	DiscountPercent       int64  `json:"discount_percent,omitempty"`
}

// PartnerCatalog lists the SKUs the partner sells in at least one of its
// currencies (only currency when it is not empty), sorted by SKU.
func PartnerCatalog(cat *Catalog, p PartnerPricing, currency string) []CatalogEntry {
	currencies := p.Currencies
	if len(currencies) == 0 {
		seen := map[string]bool{}
		for _, e := range cat.SKUs() {
			for c := range e.Prices {
				seen[c] = true
			}
		}
		for _, prices := range p.Prices {
			for c := range prices {
				seen[c] = true
			}
		}
		for c := range seen {
			currencies = append(currencies, c)
		}
		sort.Strings(currencies)
	}
	out := []CatalogEntry{}
	for _, e := range cat.SKUs() {
		entry := CatalogEntry{SKU: e.SKU, Name: e.Name, Type: e.Type, Prices: []CatalogEntryPrice{}}
		if entry.Name == "" {
			entry.Name = e.SKU
		}
		for _, c := range currencies {
			if currency != "" && c != currency {
				continue
			}
			unit, discount, ok := p.Price(cat, e.SKU, c)
			if !ok {
				continue
			}
			entry.Prices = append(entry.Prices, CatalogEntryPrice{Currency: c, Amount: FormatAmount(discounted(unit, discount), c),
				AmountWithoutDiscount: FormatAmount(unit, c), DiscountPercent: discount})
		}
		if len(entry.Prices) > 0 {
			out = append(out, entry)
		}
	}
	return out
}

// discounted takes percent off amount, rounding the discount to the nearest
// minor unit (half up).
func discounted(amount, percent int64) int64 {
	if percent <= 0 {
		return amount
	}
	return amount - (amount*percent+50)/100
}

// PartnerItem is one requested line of a partner order or cart.
type PartnerItem = storegate.PartnerItem

// PricePartnerOrder prices items in currency for a user in country, the one
// pricing of partner orders and carts: each line at the partner's unit
// price times the quantity, less the line's discount; then the bonus lines
// the paid lines qualify for (price 0); then the tax, on top of the
// discounted amount, rounded to the nearest minor unit (half up). The
// order's Amount is what the partner charges, tax included. No items price
// to zero: callers that need some say so. Errors name the field at fault.
func PricePartnerOrder(cat *Catalog, p PartnerPricing, currency, country string, items []PartnerItem) (storegate.PartnerOrder, error) {
	o := storegate.PartnerOrder{Currency: currency, Lines: []storegate.PricedLine{}}
	if err := cat.PriceCurrency(currency); err != nil {
		return o, storegate.FieldError("currency: "+err.Error(), "currency")
	}
	if !p.Sells(currency) {
		return o, storegate.FieldError("this partner does not sell in "+currency, "currency")
	}
	for i, it := range items {
		path := fmt.Sprintf("items.%d", i)
		e, ok := cat.Lookup(it.SKU)
		if !ok {
			return o, storegate.FieldError(fmt.Sprintf("unknown sku %q: not in the catalog", it.SKU), path+".sku")
		}
		if it.Quantity <= 0 || it.Quantity > MaxQuantity {
			return o, storegate.FieldError(fmt.Sprintf("quantity %d outside 1..%d", it.Quantity, MaxQuantity), path+".quantity")
		}
		unit, discount, ok := p.Price(cat, it.SKU, currency)
		if !ok {
			return o, storegate.FieldError(fmt.Sprintf("sku %q has no price in %s for this partner", it.SKU, currency), path+".sku")
		}
		if unit > math.MaxInt64/MaxQuantity/(int64(len(items))+1) {
			return o, storegate.FieldError("price overflows", path+".quantity")
		}
		gross := unit * it.Quantity
		line := storegate.PricedLine{SKU: it.SKU, Name: displayName(e), Quantity: it.Quantity, UnitPrice: unit, DiscountPercent: discount,
			Amount: discounted(gross, discount)}
		o.Lines = append(o.Lines, line)
		o.Amount += line.Amount
		o.AmountWithoutDiscount += gross
	}
	paid := o
	for _, b := range p.Bonuses {
		if !b.applies(paid) {
			continue
		}
		e, ok := cat.Lookup(b.SKU)
		if !ok {
			continue // the config checks bonus SKUs against the catalog
		}
		if i := slices.IndexFunc(o.Lines, func(l storegate.PricedLine) bool { return l.Bonus && l.SKU == b.SKU }); i >= 0 {
			o.Lines[i].Quantity = min(o.Lines[i].Quantity+b.Quantity, MaxQuantity)
			continue
		}
		o.Lines = append(o.Lines, storegate.PricedLine{SKU: b.SKU, Name: displayName(e), Quantity: b.Quantity, Bonus: true})
	}
	o.TaxRate = p.Taxes.Rate(country, currency, cat.Virtual(currency))
	o.Tax = Tax(o.Amount, o.TaxRate)
	if o.Amount > math.MaxInt64-o.Tax {
		return o, storegate.FieldError("price overflows", "items")
	}
	o.Amount += o.Tax
	return o, nil
}

func displayName(e SKU) string {
	if e.Name == "" {
		return e.SKU
	}
	return e.Name
}

// Tax is rate (millionths) of amount, rounded to the nearest minor unit
// (half up). Exact for every amount: the product is taken in big integers.
func Tax(amount, rate int64) int64 {
	if amount <= 0 || rate <= 0 {
		return 0
	}
	t := new(big.Int).Mul(big.NewInt(amount), big.NewInt(rate))
	t.Add(t, big.NewInt(500_000))
	t.Quo(t, big.NewInt(1_000_000))
	if !t.IsInt64() {
		return math.MaxInt64
	}
	return t.Int64()
}

// ParsePercent reads a percentage written in decimal ("19", "8.875") as
// millionths of the amount, exactly; ok is false for anything else,
// negative numbers and more than four decimals included.
func ParsePercent(s string) (int64, bool) {
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() < 0 || strings.ContainsAny(s, "/eE") {
		return 0, false
	}
	r.Mul(r, big.NewRat(10_000, 1))
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, false
	}
	return r.Num().Int64(), true
}

// FormatPercent writes millionths of the amount as a percentage
// (190000 -> "19", 88750 -> "8.875").
func FormatPercent(rate int64) string {
	whole, frac := rate/10_000, rate%10_000
	if frac == 0 {
		return strconv.FormatInt(whole, 10)
	}
	return strings.TrimRight(fmt.Sprintf("%d.%04d", whole, frac), "0")
}

// Currency minor units (ISO 4217) that are not 2.
var minorUnits = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
	"RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}

// IsCurrencyCode reports whether s looks like an ISO 4217 code.
func IsCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range 3 {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// MinorUnits is the number of decimals of a currency: 2 unless ISO 4217
// says otherwise, and none for a virtual currency (any name that is not
// three capital letters: Catalog.PriceCurrency keeps the others out of
// prices), counted in whole units.
func MinorUnits(currency string) int {
	if !IsCurrencyCode(currency) {
		return 0
	}
	if n, ok := minorUnits[currency]; ok {
		return n
	}
	return 2
}

// FormatAmount writes minor units as a decimal string ("199" USD -> "1.99").
func FormatAmount(minor int64, currency string) string {
	d := MinorUnits(currency)
	s := strconv.FormatInt(minor, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if d > 0 {
		for len(s) <= d {
			s = "0" + s
		}
		s = s[:len(s)-d] + "." + s[len(s)-d:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ParseAmount reads a JSON number in major units ("3.58", "358e-2") as
// minor units of currency, exactly: no floating point. ok is false when the
// number is not a whole number of minor units or is out of range.
func ParseAmount(number, currency string) (int64, bool) {
	r, ok := new(big.Rat).SetString(number)
	if !ok {
		return 0, false
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(MinorUnits(currency))), nil)))
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, false
	}
	return r.Num().Int64(), true
}

// PartnerSource is what mapping needs of one configured partner.
type PartnerSource struct {
	Name   string
	Target string
	// Receipts is the target that e-mails buyers their receipts (the
	// address of the order's user token). Empty: no receipts.
	Receipts string
}

// PartnerFulfillID is the transaction id of a partner order's grant.
func PartnerFulfillID(source string, orderID int64) string {
	return "partner." + source + ".order." + strconv.FormatInt(orderID, 10)
}

func partnerRef(orderID int64) string { return "partner order " + strconv.FormatInt(orderID, 10) }

// PartnerCreated is the tracking step of a newly created partner order.
func PartnerCreated(src PartnerSource, o storegate.PartnerOrder) storegate.OrderNote {
	return storegate.OrderNote{Order: PartnerFulfillID(src.Name, o.ID), Source: src.Name, PlayerID: o.PlayerID,
		Platform: storegate.PlatformOther, Ref: partnerRef(o.ID), Status: storegate.OrderCreated, Event: "order_created",
		Reason: fmt.Sprintf("%s %s", FormatAmount(o.Amount, o.Currency), o.Currency)}
}

// PartnerPay maps a payment of order o: its key (one per order and partner
// transaction, so a repeat is the same payment) and the grant of the
// order's lines. Purchases through partners land on the Other platform. An
// order priced in a virtual currency carries its price as the grant's
// Debit, which the target takes from the wallet with the payment.
func PartnerPay(src PartnerSource, o storegate.PartnerOrder, psTransactionID string, cat *Catalog, now time.Time) (Plan, error) {
	p := Plan{Key: "pay:" + strconv.FormatInt(o.ID, 10) + ":" + psTransactionID, PlayerID: o.PlayerID, OrderRef: partnerRef(o.ID)}
	var lines []storegate.Line
	for i, l := range o.Lines {
		line, err := cat.Line(l.SKU, l.Quantity)
		if err != nil {
			// The order was priced from this catalog: a SKU gone since is a
			// configuration change, reported as the order's fault.
			return p, lineError(err, fmt.Sprintf("purchase.order_id (items.%d)", i))
		}
		lines = append(lines, line)
	}
	p.Commands = []storegate.Command{{ID: PartnerFulfillID(src.Name, o.ID), Kind: storegate.KindFulfill, Source: src.Name,
		Target: src.Target, PlayerID: o.PlayerID, Platform: storegate.PlatformOther, OrderRef: p.OrderRef, Lines: lines, CreatedAt: now}}
	// Any currency not named like an ISO 4217 code is virtual: the order
	// was priced in it when the catalog granted it, and a configuration
	// changed since must not grant the order unpaid. A free order (a full
	// discount) debits nothing.
	if !IsCurrencyCode(o.Currency) && o.Amount > 0 {
		p.Commands[0].Debit = &storegate.Debit{Currency: o.Currency, Amount: o.Amount}
	}
	p.Commands = withReceipt(p.Commands, src.Receipts,
		storegate.Receipt{To: o.Email, Amount: FormatAmount(o.Amount, o.Currency), Currency: o.Currency})
	return p, nil
}

// PartnerCancel maps the cancellation of a paid order: the full revoke of
// its grant. One payment is cancelled once, so its key is the payment id.
func PartnerCancel(src PartnerSource, o storegate.PartnerOrder, now time.Time) Plan {
	id := PartnerFulfillID(src.Name, o.ID)
	p := Plan{Key: "cancel:" + strconv.FormatInt(o.PaymentID, 10), PlayerID: o.PlayerID, OrderRef: partnerRef(o.ID)}
	p.Commands = []storegate.Command{{ID: storegate.RevokeID(id), Kind: storegate.KindRevoke, Source: src.Name, Target: src.Target,
		PlayerID: o.PlayerID, Platform: storegate.PlatformOther, OrderRef: p.OrderRef, Reverses: id, Reason: "payment_cancelled",
		CreatedAt: now}}
	return p
}
