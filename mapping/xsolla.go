package mapping

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"storegate"
)

// Xsolla notification types storegate handles.
const (
	XsollaUserValidation = "user_validation"
	XsollaUserSearch     = "user_search"
	XsollaLink           = "create_external_transaction"
	XsollaPayment        = "payment"
	XsollaOrderPaid      = "order_paid"
	XsollaOrderCanceled  = "order_canceled"
	XsollaRefund         = "refund"
	XsollaPartialRefund  = "partial_refund"
	XsollaAFSReject      = "afs_reject"
)

// XsollaGetPinCode asks for a game key to hand the buyer; answered with the
// key, not stored as an order.
const XsollaGetPinCode = "get_pincode"

// XsollaPartnerSideCatalog asks which items a user may see; answered with
// the catalog, not stored.
const XsollaPartnerSideCatalog = "partner_side_catalog"

// XsollaAcknowledged are the other types in Xsolla's published list:
// checked against a loose schema (xsolla/acknowledged), stored, shown in the
// player's order tracking and answered 204, with no effect downstream.
var XsollaAcknowledged = []string{"afs_black_list", "user_balance_operation", "create_subscription",
	"update_subscription", "cancel_subscription", "non_renewal_subscription", "payment_account_add",
	"payment_account_remove", "redeem_key", "ps_declined"}

// XsollaNotification holds the fields of the Xsolla webhooks storegate acts
// on. Each type's schema declares which of them it carries; the others stay
// empty. validate tags restate what mapping relies on for the types that
// grant or revoke.
type XsollaNotification struct {
	NotificationType string              `json:"notification_type" validate:"required"`
	User             XsollaUser          `json:"user"`
	Items            []XsollaItem        `json:"items" validate:"dive"`
	Order            *XsollaOrder        `json:"order"`
	Transaction      *XsollaTransaction  `json:"transaction"`
	Purchase         *XsollaPurchase     `json:"purchase"`
	RefundDetails    *XsollaRefundDetail `json:"refund_details"`
	// OrderID and ProjectID come with transaction-ID linking.
	OrderID   Int `json:"order_id"`
	ProjectID Int `json:"project_id"`
	// PinCode comes with get_pincode.
	PinCode *XsollaPinCode `json:"pin_code"`
}

type XsollaUser struct {
	ID ID `json:"id"`
	// UserID names the user in partner_side_catalog, in Xsolla's current
	// reference; older ones use id.
	UserID     ID     `json:"user_id"`
	ExternalID ID     `json:"external_id"`
	PublicID   ID     `json:"public_id"`
	Email      string `json:"email"`
}

type XsollaItem struct {
	SKU      string `json:"sku" validate:"required"`
	Quantity int64  `json:"quantity" validate:"gte=1"`
	Type     string `json:"type"`
}

type XsollaOrder struct {
	ID     Int    `json:"id" validate:"required"`
	Mode   string `json:"mode"`
	Status string `json:"status"`
}

type XsollaTransaction struct {
	ID         Int `json:"id" validate:"required"`
	ExternalID ID  `json:"external_id"`
	DryRun     Int `json:"dry_run"`
}

type XsollaPurchase struct {
	VirtualCurrency *struct {
		SKU      string `json:"sku"`
		Quantity int64  `json:"quantity"`
	} `json:"virtual_currency"`
	VirtualItems *struct {
		Items []struct {
			SKU    string `json:"sku"`
			Amount int64  `json:"amount"`
		} `json:"items"`
	} `json:"virtual_items"`
}

type XsollaRefundDetail struct {
	Code   Int    `json:"code"`
	Reason string `json:"reason"`
}

// XsollaPinCode is what get_pincode asks a key for: the product and the
// platform it runs on.
type XsollaPinCode struct {
	DigitalContent string `json:"digital_content"`
	DRM            string `json:"DRM"`
}

// XsollaSource is what mapping needs to know of one configured Xsolla source.
type XsollaSource struct {
	Name   string
	Target string
	// GrantOn is the notification type that grants: order_paid (default;
	// right for combined and separate webhooks) or payment (legacy projects
	// that only process payment and refund). Exactly one type grants, so the
	// two modes can never grant twice.
	GrantOn string
	// Receipts is the target that e-mails buyers their receipts (the
	// granting notification's user.email). Empty: no receipts.
	Receipts string
}

// Plan is what one notification comes to: its dedupe key, its player and the
// commands it owes.
type Plan struct {
	Key      string
	PlayerID string
	OrderRef string
	Commands []storegate.Command
	// Notes are order history steps beyond those the commands imply.
	Notes []storegate.OrderNote
}

// Event is what the inbox stores for the payload a plan was made from.
func (p Plan) Event(source, typ string, body []byte, now time.Time) storegate.Event {
	return storegate.Event{Source: source, Type: typ, Key: p.Key, PlayerID: p.PlayerID, OrderRef: p.OrderRef,
		Body: body, ReceivedAt: now, Notes: p.Notes}
}

// Order is the order a plan is about: its transaction id.
func (p Plan) Order() string {
	if len(p.Commands) > 0 {
		return storegate.OrderOf(p.Commands[0])
	}
	if len(p.Notes) > 0 {
		return p.Notes[0].Order
	}
	return ""
}

// PlayerID returns the player a notification names: user.external_id in
// order webhooks, user.id in the others.
func (n *XsollaNotification) PlayerID() string {
	if n.User.ExternalID != "" && (n.Order != nil || n.NotificationType == XsollaLink || n.User.ID == "") {
		return string(n.User.ExternalID)
	}
	return string(n.User.ID)
}

// XsollaFulfillID is the transaction id of the fulfillment an order grants.
func XsollaFulfillID(source string, orderID Int) string {
	return "xsolla." + source + ".order." + orderID.String()
}

func xsollaTxnFulfillID(source string, txnID Int) string {
	return "xsolla." + source + ".txn." + txnID.String()
}

// Xsolla maps one stored-kind notification. body is the raw request, used
// only to key types that carry no identity of their own.
func Xsolla(src XsollaSource, n *XsollaNotification, cat *Catalog, body []byte, now time.Time) (Plan, error) {
	grantOn := src.GrantOn
	if grantOn == "" {
		grantOn = XsollaOrderPaid
	}
	p := Plan{PlayerID: n.PlayerID()}
	base := storegate.Command{Source: src.Name, Target: src.Target, PlayerID: p.PlayerID,
		Platform: storegate.PlatformXsolla, CreatedAt: now}
	switch n.NotificationType {
	case XsollaOrderPaid, XsollaOrderCanceled:
		if n.Order == nil {
			return p, storegate.FieldError("order is required", "order")
		}
		p.Key = n.NotificationType + ":" + n.Order.ID.String()
		p.OrderRef = "order " + n.Order.ID.String()
		if grantOn != XsollaOrderPaid {
			return p, nil
		}
		id := XsollaFulfillID(src.Name, n.Order.ID)
		if n.NotificationType == XsollaOrderCanceled {
			c := base
			c.ID, c.Kind, c.Reverses, c.Reason, c.OrderRef = storegate.RevokeID(id), storegate.KindRevoke, id, "order_canceled", p.OrderRef
			p.Commands = []storegate.Command{c}
			return p, nil
		}
		lines, err := orderLines(n.Items, cat)
		if err != nil {
			return p, err
		}
		c := base
		c.ID, c.Kind, c.Lines, c.OrderRef = id, storegate.KindFulfill, lines, p.OrderRef
		p.Commands = withReceipt([]storegate.Command{c}, src.Receipts, storegate.Receipt{To: n.User.Email})
		return p, nil

	case XsollaPayment, XsollaRefund, XsollaAFSReject:
		if n.Transaction == nil {
			return p, storegate.FieldError("transaction is required", "transaction")
		}
		p.Key = n.NotificationType + ":" + n.Transaction.ID.String()
		p.OrderRef = "transaction " + n.Transaction.ID.String()
		if grantOn != XsollaPayment || n.NotificationType == XsollaAFSReject {
			return p, nil
		}
		id := xsollaTxnFulfillID(src.Name, n.Transaction.ID)
		c := base
		c.OrderRef = p.OrderRef
		if n.NotificationType == XsollaRefund {
			c.ID, c.Kind, c.Reverses, c.Reason = storegate.RevokeID(id), storegate.KindRevoke, id, refundReason(n.RefundDetails)
		} else {
			lines, err := purchaseLines(n.Purchase, cat)
			if err != nil {
				return p, err
			}
			c.ID, c.Kind, c.Lines = id, storegate.KindFulfill, lines
		}
		p.Commands = []storegate.Command{c}
		if c.Kind == storegate.KindFulfill {
			p.Commands = withReceipt(p.Commands, src.Receipts, storegate.Receipt{To: n.User.Email})
		}
		return p, nil

	case XsollaPartialRefund:
		if n.Transaction == nil {
			return p, storegate.FieldError("transaction is required", "transaction")
		}
		var lines []storegate.Line
		var err error
		if len(n.Items) > 0 {
			lines, err = orderLines(n.Items, cat)
		} else {
			lines, err = purchaseLines(n.Purchase, cat)
		}
		if err != nil {
			return p, err
		}
		// One transaction may be partially refunded more than once: the
		// refunded lines are part of the identity.
		digest := linesDigest(lines)
		txn := n.Transaction.ID.String()
		p.Key = "partial_refund:" + txn + ":" + digest
		p.OrderRef = "transaction " + txn
		c := base
		c.ID, c.Kind, c.Lines, c.Reason, c.OrderRef = "xsolla."+src.Name+".prefund."+txn+"."+digest, storegate.KindRevoke, lines, refundReason(n.RefundDetails), p.OrderRef
		switch {
		case grantOn == XsollaPayment:
			c.Reverses = xsollaTxnFulfillID(src.Name, n.Transaction.ID)
		case n.Order != nil:
			c.Reverses = XsollaFulfillID(src.Name, n.Order.ID)
		}
		p.Commands = []storegate.Command{c}
		return p, nil

	}
	return p, storegate.FieldError("notification_type "+n.NotificationType+" is not one mapping acts on", "notification_type")
}

// XsollaAck maps a type storegate only acknowledges. It is keyed by its
// content, since these types carry no common id, and noted in the player's
// order tracking under an order of its own, so that it never changes the
// status of an order storegate granted.
func XsollaAck(src XsollaSource, typ, playerID string, body []byte) Plan {
	sum := sha256.Sum256(body)
	digest := hex.EncodeToString(sum[:12])
	p := Plan{Key: typ + ":" + digest, PlayerID: playerID}
	if playerID != "" {
		p.OrderRef = typ
		p.Notes = []storegate.OrderNote{{Order: "xsolla." + src.Name + "." + typ + "." + digest, Source: src.Name,
			PlayerID: playerID, Platform: storegate.PlatformXsolla, Ref: typ, Status: storegate.OrderAcknowledged, Event: typ,
			Reason: "stored and acknowledged; storegate grants and revokes nothing for this type"}}
	}
	return p
}

// XsollaPinCodePlan maps get_pincode. Its key is the transaction when the
// body names one, so a repeat hands out the same game key. Xsolla's
// get_pincode usually names none, and then nothing tells a repeat from a
// second purchase of the same game: each request is its own event (unique
// is the caller's random id), because a repeat costs a spare key, while a
// second purchase answered with the first key would cost a player the game.
func XsollaPinCodePlan(src XsollaSource, n *XsollaNotification, unique string) Plan {
	id := unique
	if n.Transaction != nil && n.Transaction.ID != 0 {
		id = "txn." + n.Transaction.ID.String()
	}
	p := Plan{Key: XsollaGetPinCode + ":" + id, PlayerID: n.PlayerID()}
	if p.PlayerID != "" {
		p.OrderRef = XsollaGetPinCode
		p.Notes = []storegate.OrderNote{{Order: "xsolla." + src.Name + "." + XsollaGetPinCode + "." + id, Source: src.Name,
			PlayerID: p.PlayerID, Platform: storegate.PlatformXsolla, Ref: XsollaGetPinCode, Status: storegate.OrderAcknowledged,
			Event: XsollaGetPinCode, Reason: "game key handed out by target " + src.Target}}
	}
	return p
}

func orderLines(items []XsollaItem, cat *Catalog) ([]storegate.Line, error) {
	if len(items) == 0 {
		return nil, storegate.FieldError("the order has no items", "items")
	}
	lines := make([]storegate.Line, 0, len(items))
	for i, it := range items {
		line, err := cat.Line(it.SKU, it.Quantity)
		if err != nil {
			return nil, lineError(err, fmt.Sprintf("items.%d", i))
		}
		lines = append(lines, line)
	}
	return lines, nil
}

func purchaseLines(pu *XsollaPurchase, cat *Catalog) ([]storegate.Line, error) {
	var lines []storegate.Line
	if pu != nil && pu.VirtualCurrency != nil && pu.VirtualCurrency.SKU != "" {
		line, err := cat.Line(pu.VirtualCurrency.SKU, pu.VirtualCurrency.Quantity)
		if err != nil {
			return nil, lineError(err, "purchase.virtual_currency")
		}
		lines = append(lines, line)
	}
	if pu != nil && pu.VirtualItems != nil {
		for i, it := range pu.VirtualItems.Items {
			line, err := cat.Line(it.SKU, it.Amount)
			if err != nil {
				return nil, lineError(err, fmt.Sprintf("purchase.virtual_items.items.%d", i))
			}
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		return nil, storegate.FieldError("the purchase names no virtual currency or items", "purchase")
	}
	return lines, nil
}

func lineError(err error, path string) error {
	if errors.Is(err, ErrUnknownSKU) {
		return storegate.FieldError(err.Error()+": not in the catalog", path+".sku")
	}
	return storegate.FieldError(err.Error(), path+".quantity")
}

func refundReason(d *XsollaRefundDetail) string {
	if d == nil {
		return "refund"
	}
	switch d.Code {
	case 2, 11, 12:
		return "chargeback"
	case 4, 7:
		return "fraud"
	}
	return "refund"
}

// linesDigest is a short stable digest of what lines grant.
func linesDigest(lines []storegate.Line) string {
	parts := make([]string, 0, len(lines))
	for _, l := range lines {
		parts = append(parts, l.SKU+"*"+strconv.FormatInt(l.Quantity, 10))
	}
	sort.Strings(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, ",")))
	return hex.EncodeToString(sum[:6])
}
