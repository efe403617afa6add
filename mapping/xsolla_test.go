package mapping_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"storegate"
	"storegate/mapping"
)

var now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func plan(t *testing.T, grantOn, body string) (mapping.Plan, error) {
	t.Helper()
	cat, err := mapping.NewCatalog(demo)
	if err != nil {
		t.Fatal(err)
	}
	var n mapping.XsollaNotification
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		t.Fatal(err)
	}
	return mapping.Xsolla(mapping.XsollaSource{Name: "xs", Target: "ledger", GrantOn: grantOn}, &n, cat, []byte(body), now)
}

func TestXsolla_Plans(t *testing.T) {
	const (
		paid     = `{"notification_type":"order_paid","order":{"id":7},"user":{"external_id":"p1","id":"ignored"},"items":[{"sku":"sword","quantity":1}]}`
		canceled = `{"notification_type":"order_canceled","order":{"id":7},"user":{"external_id":"p1"}}`
		payment  = `{"notification_type":"payment","user":{"id":"p1"},"transaction":{"id":9},"purchase":{"virtual_currency":{"sku":"crystals_100","quantity":2}}}`
		refund   = `{"notification_type":"refund","user":{"id":"p1"},"transaction":{"id":9},"refund_details":{"code":2}}`
		partial  = `{"notification_type":"partial_refund","user":{"id":"p1"},"transaction":{"id":9},"purchase":{"virtual_currency":{"sku":"crystals_100","quantity":1}}}`
		afs      = `{"notification_type":"afs_reject","user":{"id":"p1"},"transaction":{"id":9}}`
	)
	type cmd struct {
		id, reverses, reason string
		kind                 storegate.Kind
	}
	for _, tc := range []struct {
		name, grantOn, body, key string
		cmds                     []cmd
	}{
		{"order_paid grants", "order_paid", paid, "order_paid:7", []cmd{{id: "xsolla.xs.order.7", kind: storegate.KindFulfill}}},
		{"order_canceled revokes the order", "order_paid", canceled, "order_canceled:7",
			[]cmd{{id: "xsolla.xs.order.7.revoke", kind: storegate.KindRevoke, reverses: "xsolla.xs.order.7", reason: "order_canceled"}}},
		{"payment is recorded only", "order_paid", payment, "payment:9", nil},
		{"refund is recorded only", "order_paid", refund, "refund:9", nil},
		{"payment grants in payment mode", "payment", payment, "payment:9", []cmd{{id: "xsolla.xs.txn.9", kind: storegate.KindFulfill}}},
		{"refund revokes in payment mode, chargeback reason", "payment", refund, "refund:9",
			[]cmd{{id: "xsolla.xs.txn.9.revoke", kind: storegate.KindRevoke, reverses: "xsolla.xs.txn.9", reason: "chargeback"}}},
		{"order_paid is recorded only in payment mode", "payment", paid, "order_paid:7", nil},
		{"partial refund revokes its lines", "payment", partial, "", []cmd{{kind: storegate.KindRevoke, reverses: "xsolla.xs.txn.9", reason: "refund"}}},
		{"afs_reject is recorded only", "payment", afs, "afs_reject:9", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := plan(t, tc.grantOn, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.key != "" && p.Key != tc.key {
				t.Errorf("key = %q, want %q", p.Key, tc.key)
			}
			if p.Key == "" || p.PlayerID == "" {
				t.Errorf("plan = %+v: missing key or player", p)
			}
			if len(p.Commands) != len(tc.cmds) {
				t.Fatalf("commands = %+v, want %d", p.Commands, len(tc.cmds))
			}
			for i, want := range tc.cmds {
				got := p.Commands[i]
				if (want.id != "" && got.ID != want.id) || got.Kind != want.kind || got.Reverses != want.reverses || got.Reason != want.reason {
					t.Errorf("command = {%s %s reverses=%s reason=%s}, want %+v", got.ID, got.Kind, got.Reverses, got.Reason, want)
				}
				if got.PlayerID != "p1" || got.Target != "ledger" || got.Platform != storegate.PlatformXsolla || !got.CreatedAt.Equal(now) {
					t.Errorf("command = %+v: wrong player, target, platform or time", got)
				}
			}
		})
	}
}

func TestXsolla_PartialRefundKeysDependOnLines(t *testing.T) {
	one := `{"notification_type":"partial_refund","user":{"id":"p1"},"transaction":{"id":9},"items":[{"sku":"potion","quantity":1}]}`
	two := `{"notification_type":"partial_refund","user":{"id":"p1"},"transaction":{"id":9},"items":[{"sku":"potion","quantity":2}]}`
	a, _ := plan(t, "order_paid", one)
	again, _ := plan(t, "order_paid", one)
	b, _ := plan(t, "order_paid", two)
	if a.Key != again.Key || a.Commands[0].ID != again.Commands[0].ID {
		t.Fatal("the same partial refund got two identities")
	}
	if a.Key == b.Key || a.Commands[0].ID == b.Commands[0].ID {
		t.Fatal("two different partial refunds of one transaction share an identity")
	}
}

func TestXsolla_Errors(t *testing.T) {
	for _, tc := range []struct{ name, grantOn, body, field string }{
		{"unknown sku", "order_paid", `{"notification_type":"order_paid","order":{"id":1},"user":{"external_id":"p"},"items":[{"sku":"x","quantity":1}]}`, "items.0.sku"},
		{"no items", "order_paid", `{"notification_type":"order_paid","order":{"id":1},"user":{"external_id":"p"},"items":[]}`, "items"},
		{"no order", "order_paid", `{"notification_type":"order_paid","user":{"external_id":"p"},"items":[{"sku":"sword","quantity":1}]}`, "order"},
		{"huge quantity", "order_paid", `{"notification_type":"order_paid","order":{"id":1},"user":{"external_id":"p"},"items":[{"sku":"sword","quantity":2000000}]}`, "items.0.quantity"},
		{"empty purchase", "payment", `{"notification_type":"payment","user":{"id":"p"},"transaction":{"id":1},"purchase":{}}`, "purchase"},
		{"unknown sku in a purchase", "payment", `{"notification_type":"payment","user":{"id":"p"},"transaction":{"id":1},"purchase":{"virtual_items":{"items":[{"sku":"x","amount":1}]}}}`, "purchase.virtual_items.items.0.sku"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plan(t, tc.grantOn, tc.body)
			var e *storegate.Error
			if !errors.As(err, &e) || e.Code != storegate.CodeInvalidParameter || len(e.Fields) != 1 || e.Fields[0] != tc.field {
				t.Fatalf("err = %v, want INVALID_PARAMETER on %s", err, tc.field)
			}
		})
	}
}

func TestXsollaAck_KeyedByContentAndTrackedUnderAnOrderOfItsOwn(t *testing.T) {
	src := mapping.XsollaSource{Name: "xs", Target: "ledger"}
	a := mapping.XsollaAck(src, "redeem_key", "p1", []byte(`{"notification_type":"redeem_key","key":"X"}`))
	b := mapping.XsollaAck(src, "redeem_key", "p1", []byte(`{"notification_type":"redeem_key","key":"Y"}`))
	if !strings.HasPrefix(a.Key, "redeem_key:") || a.Key == b.Key {
		t.Fatalf("keys %q and %q: want redeem_key:<digest of the body>, distinct per body", a.Key, b.Key)
	}
	if len(a.Commands) != 0 || len(a.Notes) != 1 {
		t.Fatalf("plan = %+v: want no command and one note", a)
	}
	n := a.Notes[0]
	if n.PlayerID != "p1" || n.Status != storegate.OrderAcknowledged || !strings.HasPrefix(n.Order, "xsolla.xs.redeem_key.") {
		t.Errorf("note = %+v: want an acknowledged step for p1 under an order of its own", n)
	}
	if none := mapping.XsollaAck(src, "afs_black_list", "", []byte(`{}`)); len(none.Notes) != 0 {
		t.Errorf("without a player: notes = %+v, want none", none.Notes)
	}
}
