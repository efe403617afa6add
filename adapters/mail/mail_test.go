package mail_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"storegate"
	"storegate/adapters"
	"storegate/adapters/mail"
	"storegate/adapters/mail/mailtest"
)

// grants is a hand-written outbox: each fulfillment's state.
type grants map[string]storegate.State

func (g grants) CommandState(_ context.Context, id string) (storegate.State, error) {
	if s, ok := g[id]; ok && s == "error" {
		return "", errors.New("disk on fire")
	}
	return g[id], nil
}

// keys is a hand-written ledger: the keys each fulfillment took.
type keys map[string][]storegate.GameKey

func (k keys) OrderKeys(_ context.Context, id string) ([]storegate.GameKey, error) { return k[id], nil }

const fulfillID = "partner.pa.order.3"

func receipt() storegate.Command {
	return storegate.Command{ID: storegate.ReceiptID(fulfillID), Kind: storegate.KindReceipt, Source: "pa", Target: "mail",
		PlayerID: "p1", OrderRef: "partner order 3", Order: fulfillID,
		Lines:   []storegate.Line{{SKU: "110101_steam", Quantity: 2}, {SKU: "starter_sword", Quantity: 1}},
		Receipt: &storegate.Receipt{To: "buyer@example.com", Amount: "39.98", Currency: "USD"}}
}

var taken = keys{fulfillID: {{SKU: "110101_steam", Key: "STEAM-AAAA-1111", Status: "active"},
	{SKU: "110101_steam", Key: "STEAM-BBBB-2222", Status: "active"}}}

func target(t *testing.T, relay *mailtest.Relay, g grants, cfg mail.Config) *mail.Target {
	t.Helper()
	cfg.Host, cfg.TLS, cfg.From = "127.0.0.1", mail.TLSNone, "receipts@shop.example"
	if relay != nil {
		cfg.Port = relay.Port
	}
	m, err := mail.New(cfg, g, taken)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDeliver(t *testing.T) {
	for _, tc := range []struct {
		name    string
		state   storegate.State
		revoke  storegate.State // of the order's revoke
		cmd     func(c *storegate.Command)
		refuse  int
		verdict storegate.Verdict
		code    string
		sent    int
	}{
		{name: "grant done: sent", state: storegate.StateDone, verdict: storegate.VerdictDone, sent: 1},
		{name: "grant pending: waits", state: storegate.StatePending, verdict: storegate.VerdictRetry, code: "GRANT_PENDING"},
		{name: "grant a dead letter: waits for its replay", state: storegate.StateDead, verdict: storegate.VerdictRetry, code: "GRANT_PENDING"},
		{name: "grant discarded: never sent", state: storegate.StateDiscarded, verdict: storegate.VerdictDead, code: "GRANT_DISCARDED"},
		{name: "no such grant", state: "", verdict: storegate.VerdictDead, code: "NO_GRANT"},
		{name: "store failing", state: "error", verdict: storegate.VerdictRetry, code: "STORE"},
		{name: "order cancelled, its revoke queued: none sent", state: storegate.StateDone, revoke: storegate.StatePending,
			verdict: storegate.VerdictDone, code: "ORDER_REVOKED"},
		{name: "order refunded: none sent", state: storegate.StateDone, revoke: storegate.StateDone,
			verdict: storegate.VerdictDone, code: "ORDER_REVOKED"},
		{name: "store failing on the revoke", state: storegate.StateDone, revoke: "error", verdict: storegate.VerdictRetry, code: "STORE"},
		{name: "relay refuses for now", state: storegate.StateDone, refuse: 451, verdict: storegate.VerdictRetry, code: "SMTP_451"},
		{name: "relay refuses for good", state: storegate.StateDone, refuse: 550, verdict: storegate.VerdictDead, code: "SMTP_550"},
		{name: "not a receipt", state: storegate.StateDone, cmd: func(c *storegate.Command) { c.Kind = storegate.KindFulfill },
			verdict: storegate.VerdictDead, code: "NOT_A_RECEIPT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relay := mailtest.Start(t)
			if tc.refuse != 0 {
				relay.Refuse(tc.refuse)
			}
			g := grants{fulfillID: tc.state}
			if tc.revoke != "" {
				g[fulfillID+".revoke"] = tc.revoke
			}
			m := target(t, relay, g, mail.Config{})
			c := receipt()
			if tc.cmd != nil {
				tc.cmd(&c)
			}
			out := m.Deliver(context.Background(), c)
			if out.Verdict != tc.verdict || out.Code != tc.code {
				t.Fatalf("outcome %+v, want %s %s", out, tc.verdict, tc.code)
			}
			// Waiting for a grant spends no attempt and never trips the
			// relay's breaker.
			if out.Deferred != (tc.code == "GRANT_PENDING") {
				t.Errorf("%s deferred: %v", tc.code, out.Deferred)
			}
			if got := len(relay.Messages()); got != tc.sent {
				t.Fatalf("relay accepted %d messages, want %d", got, tc.sent)
			}
			if strings.Contains(out.Message, "STEAM-") {
				t.Errorf("the outcome shows a key: %s", out.Message)
			}
		})
	}
}

// A receipt says what was bought and paid and carries the keys; every
// attempt carries the same Message-ID, derived from the command's id.
func TestDeliver_ReceiptAndItsMessageID(t *testing.T) {
	relay := mailtest.Start(t)
	m := target(t, relay, grants{fulfillID: storegate.StateDone}, mail.Config{})
	for range 2 {
		if out := m.Deliver(context.Background(), receipt()); out.Verdict != storegate.VerdictDone {
			t.Fatalf("outcome %+v", out)
		}
	}
	msgs := relay.Messages()
	want := "<" + mail.MessageID(receipt().ID, "shop.example") + ">"
	if len(msgs) != 2 || msgs[0].MessageID != want || msgs[1].MessageID != want {
		t.Fatalf("Message-IDs %+v, want %s twice", relay.ByMessageID(), want)
	}
	got := msgs[0]
	if got.From != "receipts@shop.example" || len(got.To) != 1 || got.To[0] != "buyer@example.com" ||
		got.Header.Get("Subject") != "Your receipt: partner order 3" {
		t.Errorf("envelope %s -> %v, subject %q", got.From, got.To, got.Header.Get("Subject"))
	}
	for _, s := range []string{"Paid: 39.98 USD", "2 x 110101_steam", "1 x starter_sword", "110101_steam: STEAM-AAAA-1111",
		"110101_steam: STEAM-BBBB-2222", "Reference: " + fulfillID} {
		if !strings.Contains(got.Body, s) {
			t.Errorf("the body lacks %q:\n%s", s, got.Body)
		}
	}
	if other := mail.MessageID("partner.pa.order.4.receipt", "shop.example"); "<"+other+">" == want {
		t.Error("two receipts share a Message-ID")
	}
}

// A relay that cannot be reached opens its breaker: the next receipts wait
// without reaching it and spend no attempt.
func TestDeliver_RelayDownOpensTheBreaker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens: connections are refused
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	m := target(t, nil, grants{fulfillID: storegate.StateDone},
		mail.Config{Port: port, Breaker: adapters.BreakerConfig{Failures: 2}, Now: func() time.Time { return now }})
	for i := range 2 {
		if out := m.Deliver(context.Background(), receipt()); out.Verdict != storegate.VerdictRetry || out.Code != "SMTP_UNAVAILABLE" {
			t.Fatalf("attempt %d: %+v", i+1, out)
		}
	}
	if out := m.Deliver(context.Background(), receipt()); out.Verdict != storegate.VerdictWait || out.Code != "BREAKER_OPEN" {
		t.Fatalf("with the breaker open: %+v", out)
	}
}

func TestConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  mail.Config
		want string
	}{
		{"complete", mail.Config{Host: "smtp.example.com", From: "r@example.com"}, ""},
		{"no host", mail.Config{From: "r@example.com"}, "host is required"},
		{"a name in from", mail.Config{Host: "h", From: "Shop <r@example.com>"}, "not a bare e-mail address"},
		{"unknown tls", mail.Config{Host: "h", From: "r@example.com", TLS: "ssl"}, `tls "ssl"`},
		{"password in clear", mail.Config{Host: "h", From: "r@example.com", TLS: mail.TLSNone, Username: "u", Password: "p"}, "never sent without TLS"},
		{"bad port", mail.Config{Host: "h", From: "r@example.com", Port: 70000}, "not a TCP port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	if d := (mail.Config{TLS: mail.TLSImplicit}).WithDefaults(); d.Port != 465 {
		t.Errorf("tls's default port %d", d.Port)
	}
	if d := (mail.Config{}).WithDefaults(); d.Port != 587 || d.TLS != mail.TLSStartTLS || d.Timeout != 5*time.Second || d.Name != "mail" {
		t.Errorf("defaults %+v", d)
	}
}

// Over TLS, with a login: a receipt goes through STARTTLS or TLS from the
// first byte to a relay whose certificate the configured authorities
// trust; a password goes only over an encrypted connection, and a relay's
// refusal of it is a dead letter that never shows it.
func TestDeliver_OverTLSWithALogin(t *testing.T) {
	const user, password = "shop", "hunter2-smtp"
	auth := mailtest.NewAuthority(t)
	for _, tc := range []struct {
		name     string
		relay    []mailtest.Option
		tls      string
		roots    bool
		user     string
		password string
		verdict  storegate.Verdict
		code     string
		logins   []mailtest.Login
	}{
		{name: "starttls", relay: []mailtest.Option{mailtest.WithStartTLS(auth.Server), mailtest.WithLogin(user, password)},
			tls: mail.TLSStartTLS, roots: true, user: user, password: password, verdict: storegate.VerdictDone,
			logins: []mailtest.Login{{Username: user, OK: true, TLS: true}}},
		{name: "tls from the first byte", relay: []mailtest.Option{mailtest.WithImplicitTLS(auth.Server), mailtest.WithLogin(user, password)},
			tls: mail.TLSImplicit, roots: true, user: user, password: password, verdict: storegate.VerdictDone,
			logins: []mailtest.Login{{Username: user, OK: true, TLS: true}}},
		{name: "starttls without a login", relay: []mailtest.Option{mailtest.WithStartTLS(auth.Server)},
			tls: mail.TLSStartTLS, roots: true, verdict: storegate.VerdictDone},
		{name: "a wrong password is refused for good", relay: []mailtest.Option{mailtest.WithStartTLS(auth.Server), mailtest.WithLogin(user, password)},
			tls: mail.TLSStartTLS, roots: true, user: user, password: "wrong-" + password, verdict: storegate.VerdictDead, code: "SMTP_535",
			logins: []mailtest.Login{{Username: user, OK: false, TLS: true}}},
		{name: "a relay wanting a login none is configured for", relay: []mailtest.Option{mailtest.WithStartTLS(auth.Server), mailtest.WithLogin(user, password)},
			tls: mail.TLSStartTLS, roots: true, verdict: storegate.VerdictDead, code: "SMTP_530"},
		{name: "a relay without starttls never sees the password", relay: []mailtest.Option{mailtest.WithLogin(user, password), mailtest.WithLoginInClear()},
			tls: mail.TLSStartTLS, roots: true, user: user, password: password, verdict: storegate.VerdictRetry, code: "SMTP_UNAVAILABLE"},
		{name: "an untrusted certificate never sees the password", relay: []mailtest.Option{mailtest.WithStartTLS(auth.Server), mailtest.WithLogin(user, password)},
			tls: mail.TLSStartTLS, user: user, password: password, verdict: storegate.VerdictRetry, code: "SMTP_UNAVAILABLE"},
		{name: "an untrusted certificate from the first byte", relay: []mailtest.Option{mailtest.WithImplicitTLS(auth.Server), mailtest.WithLogin(user, password)},
			tls: mail.TLSImplicit, user: user, password: password, verdict: storegate.VerdictRetry, code: "SMTP_UNAVAILABLE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relay := mailtest.Start(t, tc.relay...)
			cfg := mail.Config{Host: "127.0.0.1", Port: relay.Port, TLS: tc.tls, Username: tc.user, Password: tc.password,
				From: "receipts@shop.example", Timeout: 2 * time.Second}
			if tc.roots {
				cfg.RootCAs = auth.Roots
			}
			m, err := mail.New(cfg, grants{fulfillID: storegate.StateDone}, taken)
			if err != nil {
				t.Fatal(err)
			}
			out := m.Deliver(context.Background(), receipt())
			if out.Verdict != tc.verdict || out.Code != tc.code {
				t.Fatalf("outcome %+v, want %s %s", out, tc.verdict, tc.code)
			}
			sent := 0
			if tc.verdict == storegate.VerdictDone {
				sent = 1
			}
			if got := len(relay.Messages()); got != sent {
				t.Errorf("relay accepted %d messages, want %d", got, sent)
			}
			if got := relay.Logins(); !slices.Equal(got, tc.logins) {
				t.Errorf("logins %+v, want %+v", got, tc.logins)
			}
			if strings.Contains(out.Message, password) {
				t.Errorf("the outcome shows the password: %s", out.Message)
			}
		})
	}
}
