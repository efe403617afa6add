package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
)

// A custom revocation service that is down opens its own breaker and holds
// up only the revokes that ask it: Xsolla's user_validation for the
// ledger's source gets the same answer as before, and purchases are still
// granted.
func TestGateway_RevocationServiceDownLeavesUserValidation(t *testing.T) {
	dead := freeAddr(t) // nothing listens here: the service is down
	cfgText := fmt.Sprintf(`
log_level: warn
store: {dsn: "sqlite:%s"}
admin: {tokens: ["${ADMIN}"]}
dispatch: {disabled: true, lease: 10s, timeout: 3s}
sources:
  - {name: xs, kind: xsolla, secrets: ["${XS}"], target: ledger, allow_ips: ["127.0.0.1", "::1"]}
targets:
  - name: ledger
    kind: ledger
    player_pattern: "^p[0-9]+$"
    breaker: {failures: 3}
    revocation:
      currency: custom
      custom: {http: {url: "http://%s/revoke", secrets: ["${REV}"], timeout: 1s}}
catalog:
  - {sku: crystals_100, type: coin, currency: CRYSTALS, amount: 100}
`, filepath.Join(t.TempDir(), "storegate.db"), dead)
	l := serveLive(t, cfgText, map[string]string{"ADMIN": liveAdminToken, "XS": liveXsolla,
		"REV": "whsec_cmV2b2NhdGlvbi1zZXJ2aWNlLXNlY3JldC0wMQ=="}, slog.LevelInfo)
	g := l.gw
	post := func(body string) (int, string) { return l.send("xs", body) }
	validate := func() (int, string) {
		return post(`{"notification_type":"user_validation","user":{"id":"p9"}}`)
	}
	statusBefore, bodyBefore := validate()

	// Five purchases, granted; then five cancels, whose revokes ask the
	// service that is down.
	for o := 1; o <= 5; o++ {
		if s, err := l.post("xs", o, fmt.Sprint("p", o), "crystals_100"); err != nil || s != 204 {
			t.Fatalf("order_paid %d: %d %v", o, s, err)
		}
	}
	if _, err := g.Dispatcher.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	for o := 1; o <= 5; o++ {
		if s, b := post(fmt.Sprintf(`{"notification_type":"order_canceled","order":{"id":%d,"status":"canceled"},"user":{"external_id":"p%d"},"items":[{"sku":"crystals_100","quantity":1}]}`, o, o)); s != 204 {
			t.Fatalf("order_canceled %d: %d %s", o, s, b)
		}
	}
	if _, err := g.Dispatcher.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := breakerOpens(t, l, "ledger"); got == 0 {
		t.Fatalf("the revocation service's breaker never opened")
	}

	if s, b := validate(); s != statusBefore || b != bodyBefore {
		t.Errorf("user_validation with the revocation service down = %d %s, want %d %s as before", s, b, statusBefore, bodyBefore)
	}
	if s, err := l.post("xs", 6, "p6", "crystals_100"); err != nil || s != 204 {
		t.Fatalf("order_paid with the revocation service down: %d %v", s, err)
	}
	if _, err := g.Dispatcher.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	var state string
	if err := g.DB.QueryRow(context.Background(), `SELECT state FROM outbox WHERE id = 'xsolla.xs.order.6'`).Scan(&state); err != nil || state != "done" {
		t.Errorf("the purchase made while the revocation service is down is %q (%v), want done", state, err)
	}
	var waiting int
	if err := g.DB.QueryRow(context.Background(), `SELECT COUNT(*) FROM outbox WHERE kind = 'revoke' AND state = 'pending' AND attempts < 5`).Scan(&waiting); err != nil || waiting != 5 {
		t.Errorf("%d revokes waiting for the service (%v), want all 5, none near a dead letter", waiting, err)
	}
}
