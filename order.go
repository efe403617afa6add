package storegate

import "time"

// OrderStatus is where an order stands, as support staff read it. Every
// order from every sender is tracked with the history of its statuses.
type OrderStatus string

const (
	OrderCreated  OrderStatus = "created"  // a partner order priced, not paid yet
	OrderReceived OrderStatus = "received" // an event about the order was stored; its command is queued
	OrderGranted  OrderStatus = "granted"  // the target applied the order's grant
	OrderRevoked  OrderStatus = "revoked"  // the target applied a claw-back of the order
	OrderRefunded OrderStatus = "refunded" // refunded and recorded, deliberately not clawed back
	OrderFailed   OrderStatus = "failed"   // a command can never succeed, or the order cannot be processed
	// OrderAcknowledged: a notification storegate stores and answers but
	// acts on in no way (a subscription change, a redeemed key, ...).
	OrderAcknowledged OrderStatus = "acknowledged"
)

// OrderNote is one step in an order's history, written with the event or
// the delivery that caused it.
type OrderNote struct {
	// Order is the order's identity: the transaction id of its fulfillment.
	Order    string
	Source   string
	PlayerID string
	Platform Platform
	// Ref is the sender's own identity of the order ("epic entitlement ...").
	Ref    string
	Status OrderStatus
	// Event is the event type (purchase, chargeback, order_paid, ...), or
	// the command kind for a delivery.
	Event  string
	Reason string
	// TransactionID is the command the step concerns, if any.
	TransactionID string
}

// OrderOf is the order a command belongs to: its Order when set, else the
// fulfillment it is (fulfill) or reverses (revoke).
func OrderOf(c Command) string {
	switch {
	case c.Order != "":
		return c.Order
	case c.Kind == KindRevoke && c.Reverses != "":
		return c.Reverses
	}
	return c.ID
}

// OrderRecord is one tracked order with its history, oldest step first.
type OrderRecord struct {
	ID        string      `json:"id"`
	Source    string      `json:"source"`
	PlayerID  string      `json:"player_id"`
	Platform  Platform    `json:"platform"`
	Ref       string      `json:"order_ref"`
	Status    OrderStatus `json:"status"`
	Reason    string      `json:"reason,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
	History   []OrderStep `json:"history"`
}

// OrderStep is one entry of an order's history.
type OrderStep struct {
	Status        OrderStatus `json:"status"`
	Event         string      `json:"event,omitempty"`
	Reason        string      `json:"reason,omitempty"`
	TransactionID string      `json:"transaction_id,omitempty"`
	// AnswerStatus is the HTTP status storegate answered the sender with,
	// on the step of an event it received.
	AnswerStatus int       `json:"answer_status,omitempty"`
	At           time.Time `json:"at"`
}

// PartnerOrderStatus is a distribution partner's order's payment state.
type PartnerOrderStatus string

const (
	PartnerOrderCreated   PartnerOrderStatus = "created"
	PartnerOrderPaid      PartnerOrderStatus = "paid"
	PartnerOrderCancelled PartnerOrderStatus = "cancelled"
)

// PartnerOrder is an order a distribution partner created before charging
// its user: what it costs, for whom, and whether it was paid.
type PartnerOrder struct {
	ID       int64  `json:"order_id"`
	Source   string `json:"-"`
	PlayerID string `json:"player_id"`
	// Currency is an ISO 4217 code; amounts are in its minor units.
	Currency string `json:"currency"`
	// Amount is what the partner charges: the lines' amounts plus Tax.
	Amount int64 `json:"amount"`
	// AmountWithoutDiscount is the lines' list prices, before discounts
	// and tax.
	AmountWithoutDiscount int64 `json:"amount_without_discount"`
	// TaxRate is in millionths of the amount (19% = 190000); Tax is that
	// share of the discounted amount, rounded to the minor unit.
	TaxRate int64              `json:"tax_rate"`
	Tax     int64              `json:"tax"`
	Lines   []PricedLine       `json:"items"`
	Status  PartnerOrderStatus `json:"status"`
	// PaymentID is set once paid: the id answered to the partner.
	PaymentID int64 `json:"payment_id,omitempty"`
	// Email is the buyer's address, from the user token the order was
	// made with: where its receipt goes. Empty: no receipt.
	Email     string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// PartnerItem is one SKU and its quantity, as a partner asks for it in an
// order or keeps it in a cart.
type PartnerItem struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// PartnerCart is a distribution partner's cart of one player: what the
// partner put in it, in the order it was added, priced when it is read. An
// order made from it empties it.
type PartnerCart struct {
	Source   string
	PlayerID string
	// Currency is an ISO 4217 code; empty until the partner gives one.
	Currency string
	Items    []PartnerItem
	// UpdatedAt is zero for a cart never filled.
	UpdatedAt time.Time
}

// PricedLine is one SKU of a partner order with its price, in minor units.
// A bonus line is free: a promotion added it, and it is granted (and
// revoked) with the order like any other line.
type PricedLine struct {
	SKU             string `json:"sku"`
	Name            string `json:"name,omitempty"`
	Quantity        int64  `json:"quantity"`
	UnitPrice       int64  `json:"unit_price"`
	DiscountPercent int64  `json:"discount_percent,omitempty"`
	Amount          int64  `json:"amount"`
	Bonus           bool   `json:"bonus,omitempty"`
}

// GameKey is one game key a grant handed out: the embedded ledger's
// record of who was given it, by which order, and whether it was revoked.
type GameKey struct {
	SKU string `json:"sku"`
	Key string `json:"key"`
	// Status is active, or revoked once the order was refunded or
	// cancelled: a revoked key is never handed out again.
	Status        string    `json:"status"`
	PlayerID      string    `json:"player_id"`
	EntitlementID string    `json:"entitlement_id"`
	TransactionID string    `json:"transaction_id"`
	GivenAt       time.Time `json:"given_at"`
}
