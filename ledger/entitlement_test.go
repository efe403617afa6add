package ledger_test

import (
	"context"
	"testing"

	"storegate"
	"storegate/ledger"
)

func TestConsume(t *testing.T) {
	ctx := context.Background()
	l, db := openLedger(t, ledger.Config{})
	if _, err := l.Fulfill(ctx, fulfill("t1", "p1", storegate.PlatformXsolla,
		item("potion", storegate.ItemConsumable, 3), item("sword", storegate.ItemDurable, 1), item("chest", storegate.ItemLootBox, 1))); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Fulfill(ctx, fulfill("t2", "p2", storegate.PlatformXsolla, item("potion", storegate.ItemConsumable, 3))); err != nil {
		t.Fatal(err)
	}
	res := consume(t, l, "k1", "t1/0/0", 1)
	if e := res.Entitlement; e.UseCount != 2 || e.ConsumedCount != 1 || e.GrantedCount != 3 || e.Status != "active" || res.Consumed != 1 {
		t.Fatalf("after one use: %+v", res)
	}
	if again := consume(t, l, "k1", "t1/0/0", 1); !again.Replayed || again.Entitlement.UseCount != 2 {
		t.Fatalf("repeat = %+v, want the first result replayed", again)
	}
	rows := rowCount(t, db)
	tests := []struct {
		name string
		req  ledger.Consume
		code storegate.Code
	}{
		{"more uses than left", ledger.Consume{PlayerID: "p1", EntitlementID: "t1/0/0", UseCount: 3, Key: "k2"}, storegate.CodeConflict},
		{"a durable", ledger.Consume{PlayerID: "p1", EntitlementID: "t1/1/0", Key: "k3"}, storegate.CodeConflict},
		{"another player's", ledger.Consume{PlayerID: "p1", EntitlementID: "t2/0/0", Key: "k4"}, storegate.CodeNotFound},
		{"unknown", ledger.Consume{PlayerID: "p1", EntitlementID: "nope", Key: "k5"}, storegate.CodeNotFound},
		{"same key, other request", ledger.Consume{PlayerID: "p1", EntitlementID: "t1/0/0", UseCount: 2, Key: "k1"}, storegate.CodeConflict},
		{"no key", ledger.Consume{PlayerID: "p1", EntitlementID: "t1/0/0"}, storegate.CodeInvalidParameter},
		{"negative", ledger.Consume{PlayerID: "p1", EntitlementID: "t1/0/0", UseCount: -1, Key: "k6"}, storegate.CodeInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Consume(ctx, tc.req); storegate.ErrorCode(err) != tc.code {
				t.Errorf("err = %v, want %s", err, tc.code)
			}
		})
	}
	if got := rowCount(t, db); got != rows {
		t.Error("refused consumes changed the store")
	}
	if e := consume(t, l, "k7", "t1/0/0", 2).Entitlement; e.UseCount != 0 || e.Status != "consumed" {
		t.Errorf("after the last uses: %+v, want consumed", e)
	}
	if e := consume(t, l, "open", "t1/2/0", 0).Entitlement; e.Status != "consumed" {
		t.Errorf("opened box = %+v, want consumed", e)
	}
	if got, want := entitlements(t, l, "p1", false), map[string]string{"sword": "active"}; !equalMaps(got, want) {
		t.Errorf("active entitlements = %v, want %v", got, want)
	}
	if _, err := l.Revoke(ctx, revoke("t2.revoke", "p2", storegate.PlatformXsolla, "t2")); err != nil {
		t.Fatal(err)
	}
	_, err := l.Consume(ctx, ledger.Consume{PlayerID: "p2", EntitlementID: "t2/0/0", Key: "k8"})
	if storegate.ErrorCode(err) != storegate.CodeConflict {
		t.Errorf("consume of a revoked entitlement: err = %v, want CONFLICT", err)
	}
}
