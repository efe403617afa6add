package storegate

import (
	"fmt"
	"strings"
	"time"
)

// Platform is where a purchase was made. Wallet balances are kept per
// platform because stores differ in what they allow (refunds, claw-backs).
type Platform string

const (
	PlatformSteam       Platform = "Steam"
	PlatformEpic        Platform = "Epic"
	PlatformXbox        Platform = "Xbox"
	PlatformPlayStation Platform = "PlayStation"
	PlatformTwitch      Platform = "Twitch"
	PlatformXsolla      Platform = "Xsolla"
	PlatformSystem      Platform = "System"
	PlatformOther       Platform = "Other"
)

// Platforms lists every platform in the ledger's default spending order:
// currency that can never be clawed back is spent first (System grants, then
// Steam and Twitch, which allow no refund once consumed), and currency from
// stores that claw back refunds and chargebacks (Xsolla, Epic, Xbox,
// PlayStation) last, so a later claw-back still finds it unspent.
var Platforms = []Platform{PlatformSystem, PlatformSteam, PlatformTwitch, PlatformOther,
	PlatformXsolla, PlatformEpic, PlatformXbox, PlatformPlayStation}

// ParsePlatform accepts a platform name in any case ("steam", "Steam").
func ParsePlatform(s string) (Platform, error) {
	for _, p := range Platforms {
		if strings.EqualFold(string(p), s) {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown platform %q", s)
}

// ItemType is the kind of thing a grant hands out (AGS's item types).
type ItemType string

const (
	ItemCurrency   ItemType = "coin"       // virtual currency credited to a wallet
	ItemDurable    ItemType = "durable"    // owned forever, one per player
	ItemConsumable ItemType = "consumable" // has a use count that the game consumes
	ItemMedia      ItemType = "media"      // durable content (soundtrack, artbook)
	ItemOptionBox  ItemType = "optionbox"  // a box the player opens to choose a reward
	ItemLootBox    ItemType = "lootbox"    // a box the player opens for a random reward
	ItemBundle     ItemType = "bundle"     // expands to its contents
	// ItemGameKey hands the buyer one key per unit from the SKU's pool
	// (Xsolla's game_key, a SKU in the sku_drm form: 110101_steam).
	ItemGameKey ItemType = "game_key"
)

// Grant is one effect of a fulfillment: currency credited or an item
// entitled. Exactly one of Currency and Item is set.
type Grant struct {
	Currency string   `json:"currency,omitempty"`
	Amount   int64    `json:"amount,omitempty"`
	Item     string   `json:"item,omitempty"`
	Type     ItemType `json:"type,omitempty"`
	// Quantity is the number of items (durable: 1; consumable: the use count).
	Quantity int64 `json:"quantity,omitempty"`
	// Revocation is the catalog item's revocation action (RevokeNone, ...),
	// kept with the grant so a revoke follows the terms the item was sold
	// under. Empty: the target's rule for the kind decides.
	Revocation string `json:"revocation,omitempty"`
}

// Line is one purchased SKU with what it grants, already multiplied by the
// purchased quantity. A bundle line carries its contents as Grants.
type Line struct {
	SKU      string   `json:"sku"`
	Quantity int64    `json:"quantity"`
	Bundle   bool     `json:"bundle,omitempty"`
	Grants   []Grant  `json:"grants"`
	Type     ItemType `json:"type,omitempty"`
}

// Kind says what a command asks of a target.
type Kind string

const (
	KindFulfill Kind = "fulfill"
	KindRevoke  Kind = "revoke"
	// KindReceipt e-mails the buyer the receipt of the fulfillment named in
	// Order: its lines and, read when it is sent, the game keys it took.
	KindReceipt Kind = "receipt"
)

// Command is one call owed to a target. ID is deterministic (derived from
// the sender's order identity) and is the target's idempotency key, so a
// command may be delivered any number of times with one effect.
type Command struct {
	ID       string   `json:"id"`
	Kind     Kind     `json:"kind"`
	Source   string   `json:"source"`
	Target   string   `json:"target"`
	PlayerID string   `json:"player_id"`
	Platform Platform `json:"platform"`
	// OrderRef is the sender's own order or transaction identity, for support.
	OrderRef string `json:"order_ref,omitempty"`
	// Lines to grant, or for a revoke the lines to take back; a revoke with
	// no lines takes back everything its Reverses fulfillment granted.
	Lines []Line `json:"lines,omitempty"`
	// Reverses is, for a revoke, the ID of the fulfill command it undoes.
	Reverses string `json:"reverses,omitempty"`
	// Reason says why a revoke happens (refund, chargeback, cancel, ...).
	Reason string `json:"reason,omitempty"`
	// Order is the order the command belongs to, for order tracking, when
	// it is neither the command itself (fulfill) nor what it Reverses (a
	// re-grant after a reversed chargeback). Usually empty: see OrderOf.
	Order string `json:"order,omitempty"`
	// Receipt is, for a receipt, where it goes and what the buyer paid.
	Receipt *Receipt `json:"receipt,omitempty"`
	// Debit is, for a fulfillment of an order priced in a virtual
	// currency, what the player pays for it from their wallet. The target
	// takes it in the transaction that accepts the payment (store.Holder),
	// never when the grant is applied, so a grant can exist only with its
	// debit; the revoke of the fulfillment credits it back.
	Debit     *Debit    `json:"debit,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Debit is a wallet debit that pays for a fulfillment: Amount whole units
// of the virtual currency Currency.
type Debit struct {
	Currency string `json:"currency"`
	Amount   int64  `json:"amount"`
}

// RevokeID is the transaction id of the full revoke of a fulfillment: one per
// fulfillment, so a refund and a cancel of one order revoke once.
func RevokeID(fulfillID string) string { return fulfillID + ".revoke" }

// DebitID is the transaction id of the debit that pays for a fulfillment.
func DebitID(fulfillID string) string { return fulfillID + ".debit" }

// Receipt is what a receipt command knows beyond its lines. It holds no
// game keys: the mail target reads them when it sends, so no key is copied
// into the outbox.
type Receipt struct {
	// To is the buyer's e-mail address.
	To string `json:"to"`
	// Amount and Currency are what the buyer paid, as a decimal string in
	// major units ("39.98" USD), when the sender says; empty otherwise.
	Amount   string `json:"amount,omitempty"`
	Currency string `json:"currency,omitempty"`
}

// ReceiptID is the transaction id of the receipt of a fulfillment.
func ReceiptID(fulfillID string) string { return fulfillID + ".receipt" }

// Event is one inbound notification as accepted: the raw bytes as received and
// the key that makes it unique for its source.
type Event struct {
	Source     string
	Type       string
	Key        string // unique per source: a duplicate with the same key is the same event
	PlayerID   string
	OrderRef   string
	Body       []byte
	ReceivedAt time.Time
	// Notes are order history steps the event owes beyond those its
	// commands imply (a refund recorded without claw-back). Optional.
	Notes []OrderNote
}

// Answer is what the gateway answered a sender, stored so a duplicate gets the
// very same answer.
type Answer struct {
	Status int    `json:"status"`
	Body   []byte `json:"body,omitempty"`
}

// PinCodeRequest asks a target for one game key to hand a buyer (Xsolla's
// get_pincode).
type PinCodeRequest struct {
	// RequestID is the same for every repeat of one request, so a target
	// hands out one key however often Xsolla asks.
	RequestID string `json:"request_id"`
	Source    string `json:"source"`
	PlayerID  string `json:"player_id"`
	// Product is the content the key unlocks; DRM the platform it
	// activates on ("steam").
	Product string `json:"digital_content"`
	DRM     string `json:"drm"`
}
