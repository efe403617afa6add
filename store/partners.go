package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"storegate"
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
)

// CreatePartnerOrder stores a priced order, returning it with its id, and
// records the order's first tracking step, noteFor(id), with it.
func (db *DB) CreatePartnerOrder(ctx context.Context, o storegate.PartnerOrder, noteFor func(id int64) storegate.OrderNote) (storegate.PartnerOrder, error) {
	lines, err := json.Marshal(o.Lines)
	if err != nil {
		return o, fmt.Errorf("encode lines: %w", err)
	}
	var out storegate.PartnerOrder
	err = db.Write(ctx, func(ctx context.Context, tx *Tx) error {
		out = o
		out.Status, out.CreatedAt, out.UpdatedAt = storegate.PartnerOrderCreated, tx.Now().UTC(), tx.Now().UTC()
		now := tx.Now().UnixMicro()
		if err := tx.QueryRow(ctx, `INSERT INTO partner_orders (source, player_id, currency, amount, amount_without_discount, tax_rate, tax, lines, status, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			o.Source, o.PlayerID, o.Currency, o.Amount, o.AmountWithoutDiscount, o.TaxRate, o.Tax, string(lines), string(out.Status), now, now).Scan(&out.ID); err != nil {
			return fmt.Errorf("insert partner order: %w", err)
		}
		if noteFor == nil {
			return nil
		}
		return track(ctx, tx, []step{{note: noteFor(out.ID)}})
	})
	return out, err
}

const partnerOrderColumns = `id, source, player_id, currency, amount, amount_without_discount, tax_rate, tax, lines, status, payment_id, created_at, updated_at`

func scanPartnerOrder(scan func(...any) error) (storegate.PartnerOrder, error) {
	var o storegate.PartnerOrder
	var lines string
	var payment sql.NullInt64
	var created, updated int64
	if err := scan(&o.ID, &o.Source, &o.PlayerID, &o.Currency, &o.Amount, &o.AmountWithoutDiscount, &o.TaxRate, &o.Tax, &lines, &o.Status,
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
// ErrPaid, and leaves nothing behind.
func (db *DB) PayPartnerOrder(ctx context.Context, ev storegate.Event, orderID int64, cmds []storegate.Command,
	answer func(paymentID int64) []byte) (stored storegate.Answer, duplicate bool, err error) {
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = db.now()
	}
	r := &acceptReq{ev: ev, cmds: cmds, answer: storegate.Answer{Status: 200}}
	err = db.Write(ctx, func(ctx context.Context, tx *Tx) error {
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
		r.stored.Body = answer(r.eventID)
		if _, err := tx.Exec(ctx, `UPDATE inbox SET answer_body = ? WHERE id = ?`, r.stored.Body, r.eventID); err != nil {
			return fmt.Errorf("store answer: %w", err)
		}
		return r.queue(ctx, tx)
	})
	return r.stored, r.dup, err
}

// CancelPartnerPayment stores a cancel notification and the revoke it owes,
// and marks the order cancelled, in one transaction. A second cancel of one
// payment (ErrCancelled), or a cancel of an order that is not paid
// (ErrNotPaid), leaves nothing behind.
func (db *DB) CancelPartnerPayment(ctx context.Context, ev storegate.Event, orderID int64, cmds []storegate.Command, answer []byte) error {
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = db.now()
	}
	r := &acceptReq{ev: ev, cmds: cmds, answer: storegate.Answer{Status: 200, Body: answer}}
	return db.Write(ctx, func(ctx context.Context, tx *Tx) error {
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
		return r.queue(ctx, tx)
	})
}

func lockPartnerOrder(ctx context.Context, tx *Tx, where string, args ...any) (storegate.PartnerOrderStatus, error) {
	var status storegate.PartnerOrderStatus
	err := tx.QueryRow(ctx, `SELECT status FROM partner_orders WHERE `+where+tx.ForUpdate(), args...).Scan(&status)
	return status, err
}
