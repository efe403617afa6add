package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"storegate"
	"storegate/internal/fakeclock"
	"storegate/store"
	"storegate/store/engine"
)

// Partner orders, order tracking and Fulfill Orders cursors.

func partnerOrder(t *testing.T, db *store.DB) storegate.PartnerOrder {
	t.Helper()
	o, err := db.CreatePartnerOrder(context.Background(), storegate.PartnerOrder{Source: "bank", PlayerID: "p1", Email: "p1@example.com",
		Currency: "USD", Amount: 237, AmountWithoutDiscount: 199, TaxRate: 190_000, Tax: 38,
		Lines: []storegate.PricedLine{{SKU: "crystals_100", Quantity: 1, UnitPrice: 199, Amount: 199}, {SKU: "sword", Quantity: 1, Bonus: true}}},
		func(id int64) storegate.OrderNote {
			return storegate.OrderNote{Order: fmt.Sprint("partner.bank.order.", id), Source: "bank", PlayerID: "p1", Status: storegate.OrderCreated}
		})
	if err != nil {
		t.Fatal(err)
	}
	// The buyer's address is kept for the order's receipt.
	if got, err := db.PartnerOrder(context.Background(), "bank", o.ID); err != nil || got.Email != "p1@example.com" {
		t.Fatalf("the order read back has e-mail %q (%v)", got.Email, err)
	}
	return o
}

func payEvent(orderID int64, txn string) storegate.Event {
	return storegate.Event{Source: "bank", Type: "payment", Key: fmt.Sprint("pay:", orderID, ":", txn), PlayerID: "p1", Body: []byte(`{}`)}
}

func paymentAnswer(id int64) []byte { return fmt.Appendf(nil, `{"payment_id":%d}`, id) }

// Concurrent payments of one order: one is applied; its repeats get its
// payment id back; every other payment is a conflict that leaves nothing.
func testPartnerPayOnce(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	o := partnerOrder(t, db)
	const n = 30
	var wg sync.WaitGroup
	answers := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			txn := "same"
			if i%3 == 0 {
				txn = fmt.Sprint("other-", i)
			}
			a, _, err := db.PayPartnerOrder(ctx, payEvent(o.ID, txn), o.ID, []storegate.Command{fulfill(fmt.Sprint("partner.bank.order.", o.ID))}, paymentAnswer)
			answers[i], errs[i] = string(a.Body), err
		}()
	}
	wg.Wait()
	paid := map[string]bool{}
	for i := range n {
		switch {
		case errs[i] == nil:
			paid[answers[i]] = true
		case !errors.Is(errs[i], store.ErrPaid):
			t.Fatalf("payment %d: %v, want success or ErrPaid", i, errs[i])
		}
	}
	if len(paid) != 1 {
		t.Fatalf("answers = %v, want exactly one payment id", paid)
	}
	got, err := db.PartnerOrder(ctx, "bank", o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := string(paymentAnswer(got.PaymentID)); got.Status != storegate.PartnerOrderPaid || !paid[want] {
		t.Fatalf("order = %+v, want paid with the answered id %v", got, paid)
	}
	if got.Amount != 237 || got.TaxRate != 190_000 || got.Tax != 38 || !reflect.DeepEqual(got.Lines, o.Lines) {
		t.Fatalf("order read back = %+v, want the tax and the bonus line stored", got)
	}
	if n, _ := db.EventCount(ctx, "bank"); n != 1 {
		t.Fatalf("stored payments = %d, want 1", n)
	}
	if _, err := db.PartnerOrder(ctx, "other-partner", o.ID); !errors.Is(err, store.ErrNoPartnerOrder) {
		t.Fatalf("another partner's order: %v, want ErrNoPartnerOrder", err)
	}
	if _, _, err := db.PayPartnerOrder(ctx, payEvent(o.ID+99, "x"), o.ID+99, nil, paymentAnswer); !errors.Is(err, store.ErrNoPartnerOrder) {
		t.Fatalf("pay of an unknown order: %v, want ErrNoPartnerOrder", err)
	}
	if n, _ := db.EventCount(ctx, "bank"); n != 1 {
		t.Fatalf("stored payments = %d after refusals, want 1", n)
	}
}

func testPartnerCancelOnce(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	o := partnerOrder(t, db)
	cancel := func(key string) error {
		return db.CancelPartnerPayment(ctx, storegate.Event{Source: "bank", Type: "cancellation", Key: key, PlayerID: "p1", Body: []byte(`{}`)},
			o.ID, []storegate.Command{{ID: "partner.bank.order.1.revoke", Kind: storegate.KindRevoke, Source: "bank", Target: "ledger",
				PlayerID: "p1", Reverses: "partner.bank.order.1"}}, []byte(`{}`))
	}
	if err := cancel("cancel:early"); !errors.Is(err, store.ErrNotPaid) {
		t.Fatalf("cancel of an unpaid order: %v, want ErrNotPaid", err)
	}
	if n, _ := db.EventCount(ctx, "bank"); n != 0 {
		t.Fatalf("a refused cancel stored %d events", n)
	}
	if _, _, err := db.PayPartnerOrder(ctx, payEvent(o.ID, "t"), o.ID, nil, paymentAnswer); err != nil {
		t.Fatal(err)
	}
	paid, _ := db.PartnerOrder(ctx, "bank", o.ID)
	byPayment, err := db.PartnerOrderByPayment(ctx, "bank", paid.PaymentID)
	if err != nil || byPayment.ID != o.ID {
		t.Fatalf("order by payment = %+v, %v", byPayment, err)
	}
	if err := cancel("cancel:1"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"cancel:1", "cancel:2"} {
		if err := cancel(key); !errors.Is(err, store.ErrCancelled) {
			t.Fatalf("second cancel (%s): %v, want ErrCancelled", key, err)
		}
	}
	if n, _ := db.EventCount(ctx, "bank"); n != 2 {
		t.Fatalf("stored events = %d, want the payment and one cancel", n)
	}
	got, _ := db.PartnerOrder(ctx, "bank", o.ID)
	if got.Status != storegate.PartnerOrderCancelled {
		t.Fatalf("status = %s, want cancelled", got.Status)
	}
}

// Order tracking: a step per event and per completed command; a command
// queued by an earlier event adds history but never overrides the status.
func testOrderTracking(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := fakeclock.New(Start)
	db := open(t, clock.Now)
	grant := fulfill("ord-1")
	revoke := storegate.Command{ID: "ord-1.revoke", Kind: storegate.KindRevoke, Source: "src", Target: "ledger", PlayerID: "p1", Reverses: "ord-1", Reason: "refund"}
	steps := func() (storegate.OrderStatus, []string) {
		t.Helper()
		orders, err := db.PlayerOrders(ctx, "p1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(orders) != 1 || orders[0].ID != "ord-1" {
			t.Fatalf("orders = %+v, want ord-1 only", orders)
		}
		var out []string
		for _, s := range orders[0].History {
			out = append(out, string(s.Status)+"/"+s.Event)
		}
		return orders[0].Status, out
	}
	if _, _, err := db.Accept(ctx, event("paid:1"), []storegate.Command{grant}, answer204); err != nil {
		t.Fatal(err)
	}
	complete := func(id string, state storegate.State) {
		t.Helper()
		clock.Advance(time.Second)
		if _, err := db.Claim(ctx, "w", "ledger", 10, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := db.Complete(ctx, store.Completion{ID: id, Owner: "w", State: state, Attempt: 1,
			Outcome: storegate.Outcome{Verdict: storegate.VerdictDone}}); err != nil {
			t.Fatal(err)
		}
	}
	complete("ord-1", storegate.StateDone)
	for _, key := range []string{"refund:1", "cancel:1"} {
		if _, _, err := db.Accept(ctx, storegate.Event{Source: "src", Type: key[:len(key)-2], Key: key, PlayerID: "p1", Body: []byte(`{}`)},
			[]storegate.Command{revoke}, answer204); err != nil {
			t.Fatal(err)
		}
	}
	complete("ord-1.revoke", storegate.StateDone)
	// The cancel's revoke was the refund's: it adds history only.
	if _, _, err := db.Accept(ctx, storegate.Event{Source: "src", Type: "cancel", Key: "cancel:again", PlayerID: "p1", Body: []byte(`{}`)},
		[]storegate.Command{revoke}, answer204); err != nil {
		t.Fatal(err)
	}
	status, got := steps()
	want := []string{"received/order_paid", "granted/fulfill", "received/refund", "received/cancel", "revoked/revoke", "received/cancel"}
	if status != storegate.OrderRevoked || !reflect.DeepEqual(got, want) {
		t.Fatalf("order = %s %v, want revoked %v", status, got, want)
	}
	// A note an event carries (a refund recorded without claw-back).
	ev := storegate.Event{Source: "src", Type: "refund", Key: "refund:note", PlayerID: "p1", Body: []byte(`{}`),
		Notes: []storegate.OrderNote{{Order: "ord-1", PlayerID: "p1", Status: storegate.OrderRefunded, Reason: "recorded"}}}
	if _, _, err := db.Accept(ctx, ev, nil, answer204); err != nil {
		t.Fatal(err)
	}
	if status, _ := steps(); status != storegate.OrderRefunded {
		t.Fatalf("status = %s after a recorded refund, want refunded", status)
	}
	statuses, err := db.OrderStatuses(ctx, "p1", []string{"ord-1", "ghost"})
	if err != nil || !reflect.DeepEqual(statuses, map[string]storegate.OrderStatus{"ord-1": storegate.OrderRefunded}) {
		t.Fatalf("statuses = %v, %v", statuses, err)
	}
}

// Concurrent accepts of many events in one batch track every order.
func testOrderTrackingBatched(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	const n = 100
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every fifth event revokes the order before it, likely in
			// the same batch: two steps of one order in one statement.
			c := fulfill(fmt.Sprint("t", i))
			if i%5 == 1 {
				order := fmt.Sprint("t", i-1)
				c = storegate.Command{ID: order + ".revoke", Kind: storegate.KindRevoke, Source: "src", Target: "ledger", PlayerID: "p1", Reverses: order}
			}
			if _, _, err := db.Accept(ctx, event(fmt.Sprint("e", i)), []storegate.Command{c}, answer204); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	orders, err := db.PlayerOrders(ctx, "p1", 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != n-n/5 {
		t.Fatalf("tracked orders = %d, want %d", len(orders), n-n/5)
	}
	for _, o := range orders {
		if len(o.History) == 0 || o.Status != storegate.OrderReceived {
			t.Fatalf("order %s = %s with %d steps", o.ID, o.Status, len(o.History))
		}
	}
}

func testFulfillCursorNeverRewinds(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	if _, ok, err := db.FulfillCursor(ctx, "p1", storegate.PlatformEpic); ok || err != nil {
		t.Fatalf("cursor before any run: ok %v, err %v", ok, err)
	}
	later, earlier := Start.Add(time.Hour), Start.Add(time.Minute)
	for _, at := range []time.Time{later, earlier} {
		if err := db.SetFulfillCursor(ctx, "p1", storegate.PlatformEpic, at); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := db.FulfillCursor(ctx, "p1", storegate.PlatformEpic)
	if err != nil || !ok || !got.Equal(later) {
		t.Fatalf("cursor = %v (%v, %v), want %v", got, ok, err, later)
	}
	if _, ok, _ := db.FulfillCursor(ctx, "p1", storegate.PlatformSteam); ok {
		t.Fatal("a cursor leaked to another platform")
	}
}

// Partner carts: edits are all-or-nothing and never lost to a concurrent
// one; an order takes the whole cart and empties it in one transaction.
func testPartnerCart(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := fakeclock.New(Start)
	db := open(t, clock.Now)
	empty, err := db.PartnerCart(ctx, "bank", "p1")
	if err != nil || empty.Currency != "" || len(empty.Items) != 0 || !empty.UpdatedAt.IsZero() {
		t.Fatalf("a cart never filled = %+v, %v; want empty", empty, err)
	}
	if _, err := db.OrderPartnerCart(ctx, "bank", "p1", nil, nil); !errors.Is(err, store.ErrEmptyCart) {
		t.Fatalf("order of a cart never filled: %v, want ErrEmptyCart", err)
	}
	// Concurrent edits of one player's first cart: every item lands.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := db.EditPartnerCart(ctx, "bank", "p1", func(c *storegate.PartnerCart) error {
				c.Currency = "USD"
				c.Items = append(c.Items, storegate.PartnerItem{SKU: fmt.Sprint("sku-", i), Quantity: 1})
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	cart, err := db.PartnerCart(ctx, "bank", "p1")
	if err != nil || cart.Currency != "USD" || len(cart.Items) != 8 || !cart.UpdatedAt.Equal(Start) {
		t.Fatalf("cart after 8 concurrent additions = %+v, %v; want 8 items in USD", cart, err)
	}
	if other, _ := db.PartnerCart(ctx, "other-partner", "p1"); len(other.Items) != 0 {
		t.Fatalf("another partner's cart of p1 = %+v, want empty", other)
	}
	// A refused edit, and an edit that changes nothing, write nothing.
	clock.Advance(time.Minute)
	refused := errors.New("refused")
	for _, edit := range []func(*storegate.PartnerCart) error{
		func(c *storegate.PartnerCart) error { c.Items = nil; return refused },
		func(c *storegate.PartnerCart) error { return nil },
	} {
		if _, err := db.EditPartnerCart(ctx, "bank", "p1", edit); err != nil && !errors.Is(err, refused) {
			t.Fatal(err)
		}
	}
	if again, _ := db.PartnerCart(ctx, "bank", "p1"); !reflect.DeepEqual(again, cart) {
		t.Fatalf("cart after a refused and an empty edit = %+v, want %+v", again, cart)
	}
	// A refused pricing leaves the cart and creates no order.
	if _, err := db.OrderPartnerCart(ctx, "bank", "p1", func(storegate.PartnerCart) (storegate.PartnerOrder, error) {
		return storegate.PartnerOrder{}, refused
	}, nil); !errors.Is(err, refused) {
		t.Fatalf("order refused by its pricing: %v", err)
	}
	if again, _ := db.PartnerCart(ctx, "bank", "p1"); len(again.Items) != 8 {
		t.Fatalf("cart after a refused order = %+v, want its 8 items", again)
	}
	o, err := db.OrderPartnerCart(ctx, "bank", "p1", func(c storegate.PartnerCart) (storegate.PartnerOrder, error) {
		return storegate.PartnerOrder{Source: c.Source, PlayerID: c.PlayerID, Currency: c.Currency, Amount: int64(len(c.Items)),
			Lines: []storegate.PricedLine{{SKU: c.Items[0].SKU, Quantity: 1}}}, nil
	}, func(o storegate.PartnerOrder) storegate.OrderNote {
		return storegate.OrderNote{Order: fmt.Sprint("partner.bank.order.", o.ID), Source: "bank", PlayerID: "p1", Status: storegate.OrderCreated}
	})
	if err != nil || o.ID == 0 || o.Amount != 8 || o.Status != storegate.PartnerOrderCreated {
		t.Fatalf("order from the cart = %+v, %v", o, err)
	}
	if stored, err := db.PartnerOrder(ctx, "bank", o.ID); err != nil || stored.Amount != 8 {
		t.Fatalf("stored order = %+v, %v", stored, err)
	}
	if orders, err := db.PlayerOrders(ctx, "p1", 10); err != nil || len(orders) != 1 || orders[0].Status != storegate.OrderCreated {
		t.Fatalf("tracked orders = %+v, %v; want the created order", orders, err)
	}
	after, _ := db.PartnerCart(ctx, "bank", "p1")
	if len(after.Items) != 0 || after.Currency != "USD" {
		t.Fatalf("cart after the order = %+v, want empty, still in USD", after)
	}
	if _, err := db.OrderPartnerCart(ctx, "bank", "p1", nil, nil); !errors.Is(err, store.ErrEmptyCart) {
		t.Fatalf("second order of the emptied cart: %v, want ErrEmptyCart", err)
	}
}

// holder is a hand-made store.Holder: it records the commands it is given
// inside the payment's transaction, and refuses them while refuse is set.
type holder struct {
	refuse bool
	seen   []string
}

var errHeld = errors.New("storetest: holder refuses")

func (h *holder) Hold(ctx context.Context, tx *engine.Tx, cs []storegate.Command) error {
	if h.refuse {
		return errHeld
	}
	for _, c := range cs {
		h.seen = append(h.seen, c.ID)
	}
	return nil
}

// A payment holds for its target's commands in its own transaction: a
// holder's refusal leaves nothing behind and the order unpaid; commands for
// other targets are not its business.
func testPartnerPayHolds(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t, fakeclock.New(Start).Now)
	h := &holder{refuse: true}
	db.HoldOnPay("ledger", h)
	o := partnerOrder(t, db)
	mine := fulfill(fmt.Sprint("partner.bank.order.", o.ID))
	other := fulfill("elsewhere")
	other.Target = "ags"
	cmds := []storegate.Command{mine, other}
	if _, _, err := db.PayPartnerOrder(ctx, payEvent(o.ID, "t1"), o.ID, cmds, paymentAnswer); !errors.Is(err, errHeld) {
		t.Fatalf("pay with a refusing holder: %v", err)
	}
	if n, _ := db.EventCount(ctx, ""); n != 0 {
		t.Fatalf("a refused hold stored %d events", n)
	}
	if got, _ := db.PartnerOrder(ctx, "bank", o.ID); got.Status != storegate.PartnerOrderCreated {
		t.Fatalf("a refused hold left the order %s", got.Status)
	}
	h.refuse = false
	if _, _, err := db.PayPartnerOrder(ctx, payEvent(o.ID, "t1"), o.ID, cmds, paymentAnswer); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.seen, []string{mine.ID}) {
		t.Fatalf("held for %v, want only the ledger's %s", h.seen, mine.ID)
	}
}
