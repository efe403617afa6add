package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"storegate"
	"storegate/store/engine"
)

// Distribution partners' orders. A partner creates an order (priced here),
// charges its user, then notifies the payment; the order's state moves
// created -> paid -> cancelled, each move in the same transaction as the
// notification that causes it and the commands it owes, so two notifications
// can never both pay or both cancel one order.

// The moves the state machine refuses. They name the refusal only: the
// partner API words it for the partner (webhooks/partners.go).
var (
	// ErrNoPartnerOrder: the source has no such order (another partner's
	// order is not found either).
	ErrNoPartnerOrder = errors.New("store: no such partner order")
	// ErrNoPayment: the source made no such payment.
	ErrNoPayment = errors.New("store: no such partner payment")
	// ErrPaid: another payment of a paid order.
	ErrPaid = errors.New("store: partner order already paid")
	// ErrCancelled: a second cancel of one payment.
	ErrCancelled = errors.New("store: partner payment already cancelled")
	// ErrNotPaid: a cancel of an order that is not paid.
	ErrNotPaid = errors.New("store: partner order not paid")
	// ErrEmptyCart: an order from a cart with nothing in it.
	ErrEmptyCart = errors.New("store: partner cart is empty")
)

// CreatePartnerOrder stores a priced order, returning it with its id, and
// records the order's first tracking step, noteFor(id), with it.
func (db *DB) CreatePartnerOrder(ctx context.Context, o storegate.PartnerOrder, noteFor func(id int64) storegate.OrderNote) (storegate.PartnerOrder, error) {
	lines, err := json.Marshal(o.Lines)
	if err != nil {
		return o, fmt.Errorf("encode lines: %w", err)
	}
	var out storegate.PartnerOrder
	err = db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		out, err = insertPartnerOrder(ctx, tx, o, lines)
		if err != nil || noteFor == nil {
			return err
		}
		return track(ctx, tx, []step{{note: noteFor(out.ID)}})
	})
	if err != nil {
		return storegate.PartnerOrder{}, err // out may still be filled by a write given up on
	}
	return out, nil
}

// insertPartnerOrder stores a priced order as created, lines already
// encoded, and returns it with its id.
func insertPartnerOrder(ctx context.Context, tx *engine.Tx, o storegate.PartnerOrder, lines []byte) (storegate.PartnerOrder, error) {
	o.Status, o.CreatedAt, o.UpdatedAt = storegate.PartnerOrderCreated, tx.Now().UTC(), tx.Now().UTC()
	now := tx.Now().UnixMicro()
	if err := tx.QueryRow(ctx, `INSERT INTO partner_orders (source, player_id, email, currency, amount, amount_without_discount, tax_rate, tax, lines, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		o.Source, o.PlayerID, o.Email, o.Currency, o.Amount, o.AmountWithoutDiscount, o.TaxRate, o.Tax, string(lines), string(o.Status), now, now).Scan(&o.ID); err != nil {
		return o, fmt.Errorf("insert partner order: %w", err)
	}
	return o, nil
}

const partnerOrderColumns = `id, source, player_id, email, currency, amount, amount_without_discount, tax_rate, tax, lines, status, payment_id, created_at, updated_at`

func scanPartnerOrder(scan func(...any) error) (storegate.PartnerOrder, error) {
	var o storegate.PartnerOrder
	var lines string
	var payment sql.NullInt64
	var created, updated int64
	if err := scan(&o.ID, &o.Source, &o.PlayerID, &o.Email, &o.Currency, &o.Amount, &o.AmountWithoutDiscount, &o.TaxRate, &o.Tax, &lines, &o.Status,
		&payment, &created, &updated); err != nil {
		return o, err
	}
	if err := json.Unmarshal([]byte(lines), &o.Lines); err != nil {
		return o, fmt.Errorf("decode partner order lines: %w", err)
	}
	o.PaymentID = payment.Int64
	o.CreatedAt, o.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return o, nil
}

// PartnerOrder returns one of source's orders; ErrNoPartnerOrder if source
// has no such order.
func (db *DB) PartnerOrder(ctx context.Context, source string, id int64) (storegate.PartnerOrder, error) {
	o, err := scanPartnerOrder(db.QueryRow(ctx, `SELECT `+partnerOrderColumns+` FROM partner_orders WHERE id = ? AND source = ?`, id, source).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return o, ErrNoPartnerOrder
	}
	return o, err
}

// PartnerOrderByPayment returns the order a payment paid; ErrNoPayment if
// source made no such payment.
func (db *DB) PartnerOrderByPayment(ctx context.Context, source string, paymentID int64) (storegate.PartnerOrder, error) {
	o, err := scanPartnerOrder(db.QueryRow(ctx, `SELECT `+partnerOrderColumns+` FROM partner_orders WHERE payment_id = ? AND source = ?`, paymentID, source).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return o, ErrNoPayment
	}
	return o, err
}

// PayPartnerOrder stores a pay notification and the grant it owes, and marks
// the order paid, in one transaction. The payment id is the stored event's
// id; answer(paymentID) is the body stored and answered. A repeat of the same
// notification (same event key) gets the stored answer back with duplicate
// true, and so the same payment id; another payment of a paid order is
// ErrPaid, and leaves nothing behind. What the commands need is held in the
// same transaction (HoldOnPay): a holder's refusal leaves nothing behind
// either.
func (db *DB) PayPartnerOrder(ctx context.Context, ev storegate.Event, orderID int64, cmds []storegate.Command,
	answer func(paymentID int64) []byte) (stored storegate.Answer, duplicate bool, err error) {
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = db.Now()
	}
	r := &acceptReq{ev: ev, cmds: cmds, answer: storegate.Answer{Status: 200}}
	err = db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		inserted, err := r.insertEvent(ctx, tx)
		if err != nil || !inserted {
			return err
		}
		status, err := lockPartnerOrder(ctx, tx, `id = ? AND source = ?`, orderID, ev.Source)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNoPartnerOrder
		case err != nil:
			return err
		case status != storegate.PartnerOrderCreated:
			return ErrPaid
		}
		now := tx.Now().UnixMicro()
		if _, err := tx.Exec(ctx, `UPDATE partner_orders SET status = ?, payment_id = ?, updated_at = ? WHERE id = ?`,
			string(storegate.PartnerOrderPaid), r.eventID, now, orderID); err != nil {
			return fmt.Errorf("mark paid: %w", err)
		}
		if err := db.hold(ctx, tx, r.cmds); err != nil {
			return err
		}
		r.stored.Body = answer(r.eventID)
		if _, err := tx.Exec(ctx, `UPDATE inbox SET answer_body = ? WHERE id = ?`, r.stored.Body, r.eventID); err != nil {
			return fmt.Errorf("store answer: %w", err)
		}
		return db.queue(ctx, tx, r)
	})
	if err != nil {
		return storegate.Answer{}, false, err // r may still be filled by a write given up on
	}
	return r.stored, r.dup, nil
}

// CancelPartnerPayment stores a cancel notification and the revoke it owes,
// and marks the order cancelled, in one transaction. A second cancel of one
// payment (ErrCancelled), or a cancel of an order that is not paid
// (ErrNotPaid), leaves nothing behind.
func (db *DB) CancelPartnerPayment(ctx context.Context, ev storegate.Event, orderID int64, cmds []storegate.Command, answer []byte) error {
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = db.Now()
	}
	r := &acceptReq{ev: ev, cmds: cmds, answer: storegate.Answer{Status: 200, Body: answer}}
	return db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		inserted, err := r.insertEvent(ctx, tx)
		if err != nil {
			return err
		}
		if !inserted {
			return ErrCancelled
		}
		status, err := lockPartnerOrder(ctx, tx, `id = ? AND source = ?`, orderID, ev.Source)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNoPayment
		case err != nil:
			return err
		case status == storegate.PartnerOrderCancelled:
			return ErrCancelled
		case status != storegate.PartnerOrderPaid:
			return ErrNotPaid
		}
		if _, err := tx.Exec(ctx, `UPDATE partner_orders SET status = ?, updated_at = ? WHERE id = ?`,
			string(storegate.PartnerOrderCancelled), tx.Now().UnixMicro(), orderID); err != nil {
			return fmt.Errorf("mark cancelled: %w", err)
		}
		return db.queue(ctx, tx, r)
	})
}

func lockPartnerOrder(ctx context.Context, tx *engine.Tx, where string, args ...any) (storegate.PartnerOrderStatus, error) {
	var status storegate.PartnerOrderStatus
	err := tx.QueryRow(ctx, `SELECT status FROM partner_orders WHERE `+where+tx.ForUpdate(), args...).Scan(&status)
	return status, err
}

// PartnerCart returns source's cart of player: an empty one (no currency,
// zero UpdatedAt) for a player whose cart was never filled.
func (db *DB) PartnerCart(ctx context.Context, source, playerID string) (storegate.PartnerCart, error) {
	return scanPartnerCart(source, playerID, db.QueryRow(ctx, `SELECT currency, items, updated_at FROM partner_carts WHERE source = ? AND player_id = ?`,
		source, playerID).Scan)
}

func scanPartnerCart(source, playerID string, scan func(...any) error) (storegate.PartnerCart, error) {
	c := storegate.PartnerCart{Source: source, PlayerID: playerID, Items: []storegate.PartnerItem{}}
	var items string
	var updated int64
	err := scan(&c.Currency, &items, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal([]byte(items), &c.Items); err != nil {
		return c, fmt.Errorf("decode partner cart items: %w", err)
	}
	c.UpdatedAt = time.UnixMicro(updated).UTC()
	return c, nil
}

// lockPartnerCart reads a cart inside a write, locking its row on
// PostgreSQL. Two writers creating one player's first cart at once both
// insert; the loser's unique violation makes Write run it again, and it
// then sees the winner's cart.
func lockPartnerCart(ctx context.Context, tx *engine.Tx, source, playerID string) (storegate.PartnerCart, error) {
	return scanPartnerCart(source, playerID, tx.QueryRow(ctx, `SELECT currency, items, updated_at FROM partner_carts WHERE source = ? AND player_id = ?`+tx.ForUpdate(),
		source, playerID).Scan)
}

func savePartnerCart(ctx context.Context, tx *engine.Tx, c storegate.PartnerCart, existed bool) (storegate.PartnerCart, error) {
	items, err := json.Marshal(c.Items)
	if err != nil {
		return c, fmt.Errorf("encode partner cart items: %w", err)
	}
	c.UpdatedAt = tx.Now().UTC()
	now := tx.Now().UnixMicro()
	if existed {
		_, err = tx.Exec(ctx, `UPDATE partner_carts SET currency = ?, items = ?, updated_at = ? WHERE source = ? AND player_id = ?`,
			c.Currency, string(items), now, c.Source, c.PlayerID)
	} else {
		_, err = tx.Exec(ctx, `INSERT INTO partner_carts (source, player_id, currency, items, updated_at) VALUES (?, ?, ?, ?, ?)`,
			c.Source, c.PlayerID, c.Currency, string(items), now)
	}
	if err != nil {
		return c, fmt.Errorf("save partner cart: %w", err)
	}
	return c, nil
}

// EditPartnerCart changes source's cart of player in one transaction: edit
// gets the cart as stored (empty if none) and changes it; an error from
// edit leaves the cart as it was and is returned. An edit that changes
// nothing writes nothing. edit may run more than once (see Write).
func (db *DB) EditPartnerCart(ctx context.Context, source, playerID string, edit func(*storegate.PartnerCart) error) (storegate.PartnerCart, error) {
	var out storegate.PartnerCart
	err := db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		was, err := lockPartnerCart(ctx, tx, source, playerID)
		if err != nil {
			return err
		}
		out = was
		out.Items = slices.Clone(was.Items)
		if err := edit(&out); err != nil {
			return err
		}
		if out.Currency == was.Currency && slices.Equal(out.Items, was.Items) {
			out = was
			return nil
		}
		out, err = savePartnerCart(ctx, tx, out, !was.UpdatedAt.IsZero())
		return err
	})
	if err != nil {
		return storegate.PartnerCart{}, err // out may still be filled by a write given up on
	}
	return out, nil
}

// OrderPartnerCart creates an order from everything in source's cart of
// player and empties the cart, in one transaction: price turns the cart
// into the order (an error from it leaves everything as it was and is
// returned), note is the order's first tracking step. An empty cart is
// ErrEmptyCart. price and note may run more than once (see Write).
func (db *DB) OrderPartnerCart(ctx context.Context, source, playerID string, price func(storegate.PartnerCart) (storegate.PartnerOrder, error),
	note func(storegate.PartnerOrder) storegate.OrderNote) (storegate.PartnerOrder, error) {
	var out storegate.PartnerOrder
	err := db.Write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		cart, err := lockPartnerCart(ctx, tx, source, playerID)
		if err != nil {
			return err
		}
		if len(cart.Items) == 0 {
			return ErrEmptyCart
		}
		o, err := price(cart)
		if err != nil {
			return err
		}
		lines, err := json.Marshal(o.Lines)
		if err != nil {
			return fmt.Errorf("encode lines: %w", err)
		}
		if out, err = insertPartnerOrder(ctx, tx, o, lines); err != nil {
			return err
		}
		cart.Items = []storegate.PartnerItem{}
		if _, err := savePartnerCart(ctx, tx, cart, true); err != nil {
			return err
		}
		return track(ctx, tx, []step{{note: note(out)}})
	})
	if err != nil {
		return storegate.PartnerOrder{}, err // out may still be filled by a write given up on
	}
	return out, nil
}
