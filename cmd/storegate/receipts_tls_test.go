package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"storegate/adapters/mail/mailtest"
)

// A gateway configured for a relay with a private certificate (ca_file)
// and a login sends its receipts over STARTTLS, logged in, and its logs
// never show the password.
func TestGateway_ReceiptsThroughARelayWithAPrivateCertificate(t *testing.T) {
	const password = "hunter2-smtp-relay"
	auth := mailtest.NewAuthority(t)
	relay := mailtest.Start(t, mailtest.WithStartTLS(auth.Server), mailtest.WithLogin("shop", password))
	dir := t.TempDir()
	caFile := filepath.Join(dir, "relay-ca.pem")
	if err := os.WriteFile(caFile, auth.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfgText := fmt.Sprintf(`
store: {dsn: "sqlite:%s"}
admin: {tokens: ["${ADMIN}"]}
dispatch: {lease: 3s, timeout: 2s}
sources:
  - {name: xs, kind: xsolla, secrets: ["${XS}"], target: ledger, allow_ips: ["127.0.0.1", "::1"]}
targets:
  - {name: ledger, kind: ledger, player_pattern: "^p[0-9]+$"}
catalog:
  - {sku: starter_sword, type: durable}
receipts: {enabled: true, host: 127.0.0.1, port: %d, ca_file: %q, username: shop, password: "${SMTP_PASSWORD}", from: receipts@shop.example, timeout: 2s}
`, filepath.Join(dir, "storegate.db"), relay.Port, caFile)
	l := serveLive(t, cfgText, map[string]string{"ADMIN": liveAdminToken, "XS": liveXsolla, "SMTP_PASSWORD": password}, slog.LevelDebug)
	order := `{"notification_type":"order_paid","order":{"id":71},"user":{"external_id":"p71","email":"buyer71@example.com"},"items":[{"sku":"starter_sword","quantity":1}]}`
	if status, body := l.send("xs", order); status != http.StatusNoContent {
		t.Fatalf("order_paid: %d %s", status, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(relay.Messages()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no receipt reached the relay; logs:\n%s", l.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := relay.Messages(); len(m) != 1 || !slices.Equal(m[0].To, []string{"buyer71@example.com"}) {
		t.Fatalf("messages %+v", m)
	}
	if got, want := relay.Logins(), []mailtest.Login{{Username: "shop", OK: true, TLS: true}}; !slices.Equal(got, want) {
		t.Errorf("logins %+v, want %+v", got, want)
	}
	if strings.Contains(l.log(), password) {
		t.Errorf("a log shows the relay's password:\n%s", l.log())
	}
}

// ca_file is read once, when the config is checked: a file that cannot be
// read or holds no certificate is a problem named with its key.
func TestParseConfig_ReceiptsCAFile(t *testing.T) {
	dir := t.TempDir()
	good, notPEM := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "not.pem")
	if err := os.WriteFile(good, mailtest.NewAuthority(t).PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "s"})
	for _, tc := range []struct {
		name, file, want string
	}{
		{"a PEM file", good, ""},
		{"no such file", filepath.Join(dir, "missing.pem"), "receipts.ca_file: open "},
		{"not PEM", notPEM, "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := minimal + fmt.Sprintf("receipts: {enabled: true, host: relay.example.com, from: r@example.com, ca_file: %q}\n", tc.file)
			cfg, err := ParseConfig([]byte(raw), vars)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Receipts.config(nil, nil).RootCAs == nil {
					t.Error("the file's authorities are not handed to the relay's client")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("problems %v, want %q", err, tc.want)
			}
		})
	}
}
