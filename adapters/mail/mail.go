// Package mail is the receipt target: it e-mails a buyer the receipt of a
// paid order, with the game keys its grant took, through an SMTP relay. The
// keys are read when the receipt is sent, never kept in the command.
//
// SMTP has no idempotency key, so what it promises is narrower than the
// other targets': each receipt carries a Message-ID derived from its
// command's id, the same at every attempt, and the outbox marks it done
// only after the relay accepted it. A crash (or a lost reply) after the
// relay's acceptance and before that commit sends the same message again,
// with the same Message-ID, which mail systems dedupe on.
package mail

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"storegate"
	"storegate/adapters"
)

// TLS modes of the connection to the relay.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS, required
	TLSImplicit = "tls"      // TLS from the first byte (SMTPS)
	TLSNone     = "none"     // no encryption: a relay on the same machine only
)

// Config is the SMTP relay receipts go through. Zero fields take the
// defaults.
type Config struct {
	// Host is the relay's host name or address. Required.
	Host string
	// Port is the relay's port. Default 587, or 465 with TLS "tls".
	Port int
	// TLS is starttls (default), tls or none.
	TLS string
	// RootCAs are the authorities the relay's certificate is checked
	// against. Default: the system's.
	RootCAs *x509.CertPool
	// Username and Password authenticate with the relay (PLAIN), when
	// Username is set; never over TLS none.
	Username string
	Password string
	// From is the sender's bare address (receipts@example.com). Required.
	// Its domain ends every Message-ID.
	From string
	// Timeout bounds one exchange with the relay, from the dial to the
	// relay's answer to the message. Default 5s.
	Timeout time.Duration
	// Breaker tunes the relay's breaker.
	Breaker adapters.BreakerConfig
	// Name names the breaker. Default "mail".
	Name string
	// OnBreaker hears the breaker's state changes, for metrics. Optional.
	OnBreaker adapters.BreakerObserver
	// Now is the clock (the Date header). Default time.Now.
	Now func() time.Time
}

// DefaultMaxInFlight is how many receipts the dispatcher sends at once:
// relays limit connections per client, and receipts are few.
const DefaultMaxInFlight = 4

// WithDefaults returns c with each zero field set to its default: the one
// place the defaults are written, read by New and by whoever shows them
// (the YAML config).
func (c Config) WithDefaults() Config {
	if c.TLS == "" {
		c.TLS = TLSStartTLS
	}
	if c.Port == 0 {
		c.Port = 587
		if c.TLS == TLSImplicit {
			c.Port = 465
		}
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Name == "" {
		c.Name = "mail"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate says what is wrong with c, if anything.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if c.Host == "" {
		errs = append(errs, errors.New("host is required"))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d is not a TCP port", c.Port))
	}
	switch c.TLS {
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		errs = append(errs, fmt.Errorf("tls %q is not starttls, tls or none", c.TLS))
	}
	if c.TLS == TLSNone && (c.Username != "" || c.Password != "") {
		errs = append(errs, errors.New("a username and password are never sent without TLS: use tls starttls or tls"))
	}
	if _, err := domainOf(c.From); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// domainOf is the domain of a bare address.
func domainOf(addr string) (string, error) {
	a, err := netmail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != addr {
		return "", fmt.Errorf("from %q is not a bare e-mail address like receipts@example.com", addr)
	}
	return addr[strings.LastIndexByte(addr, '@')+1:], nil
}

// Grants reports where a fulfillment stands in the outbox ("" for none): a
// receipt goes once its grant is done, so the keys it lists are the ones
// taken.
type Grants interface {
	CommandState(ctx context.Context, id string) (storegate.State, error)
}

// Keys lists the game keys a fulfillment took (the embedded ledger).
type Keys interface {
	OrderKeys(ctx context.Context, transactionID string) ([]storegate.GameKey, error)
}

// Target sends receipts through one relay, behind its breaker.
type Target struct {
	cfg     Config
	domain  string
	grants  Grants
	keys    Keys
	breaker *adapters.Breaker
}

// New returns the receipt target. keys may be nil (no embedded ledger:
// receipts list no keys).
func New(cfg Config, grants Grants, keys Keys) (*Target, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	if grants == nil {
		return nil, errors.New("mail: grants are required")
	}
	domain, _ := domainOf(cfg.From)
	return &Target{cfg: cfg, domain: domain, grants: grants, keys: keys,
		breaker: adapters.NewBreaker(cfg.Name, cfg.Breaker, cfg.Now, cfg.OnBreaker)}, nil
}

// MessageID is the Message-ID of a receipt (without its angle brackets):
// derived from the command's id alone, so every attempt carries the same.
func MessageID(commandID, domain string) string {
	sum := sha256.Sum256([]byte(commandID))
	return "receipt." + hex.EncodeToString(sum[:16]) + "@" + domain
}

// Deliver sends one receipt once its grant is done.
func (t *Target) Deliver(ctx context.Context, c storegate.Command) storegate.Outcome {
	if c.Kind != storegate.KindReceipt || c.Receipt == nil || c.Order == "" {
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: "NOT_A_RECEIPT",
			Message: fmt.Sprintf("the mail target sends receipts only, not %s commands", c.Kind)}
	}
	state, err := t.grants.CommandState(ctx, c.Order)
	switch {
	case err != nil:
		// The store, not the relay: an attempt, never a breaker failure.
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "STORE", Message: "read the grant's state: " + err.Error()}
	case state == storegate.StatePending, state == storegate.StateDead:
		// Not the relay's fault, and not for good while support may still
		// replay the grant: wait without spending attempts.
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Deferred: true, Code: "GRANT_PENDING",
			Message: "waiting for the grant " + c.Order + " (" + string(state) + ")"}
	case state == "":
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: "NO_GRANT", Message: "no fulfillment " + c.Order + " to send the receipt of"}
	case state == storegate.StateDiscarded:
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: "GRANT_DISCARDED",
			Message: "the grant " + c.Order + " was discarded: no receipt to send"}
	}
	// An order cancelled or refunded before its receipt went gets none: it
	// would tell the buyer they paid for what they no longer have.
	switch revoked, err := t.grants.CommandState(ctx, storegate.RevokeID(c.Order)); {
	case err != nil:
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "STORE", Message: "read the order's revoke: " + err.Error()}
	case revoked != "":
		return storegate.Outcome{Verdict: storegate.VerdictDone, Code: "ORDER_REVOKED",
			Message: "the order " + c.Order + " was revoked before its receipt went: none sent"}
	}
	var keys []storegate.GameKey
	if t.keys != nil {
		if keys, err = t.keys.OrderKeys(ctx, c.Order); err != nil {
			return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "STORE", Message: "read the grant's keys: " + err.Error()}
		}
	}
	msg, err := t.message(c, keys)
	if err != nil {
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: "BAD_RECEIPT", Message: err.Error()}
	}
	return t.breaker.Do(func() storegate.Outcome { return t.send(ctx, msg) })
}

// message composes the receipt. Its text holds the keys; nothing built from
// it is ever logged or returned.
func (t *Target) message(c storegate.Command, keys []storegate.GameKey) (*gomail.Msg, error) {
	m := gomail.NewMsg()
	if err := m.From(t.cfg.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := m.To(c.Receipt.To); err != nil {
		return nil, fmt.Errorf("the buyer's address %q: %w", c.Receipt.To, err)
	}
	m.SetMessageIDWithValue(MessageID(c.ID, t.domain))
	m.SetDateWithValue(t.cfg.Now())
	m.Subject("Your receipt: " + c.OrderRef)
	m.SetBodyString(gomail.TypeTextPlain, Body(c, keys))
	return m, nil
}

// Body is a receipt's text: the order, what was paid, its lines and its
// game keys.
func Body(c storegate.Command, keys []storegate.GameKey) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Thank you for your purchase.\n\nOrder: %s\n", c.OrderRef)
	if c.Receipt != nil && c.Receipt.Amount != "" {
		fmt.Fprintf(&b, "Paid: %s %s\n", c.Receipt.Amount, c.Receipt.Currency)
	}
	b.WriteString("\nItems:\n")
	for _, l := range c.Lines {
		fmt.Fprintf(&b, "  %d x %s\n", l.Quantity, l.SKU)
	}
	if len(keys) > 0 {
		b.WriteString("\nYour game keys:\n")
		for _, k := range keys {
			note := ""
			if k.Status != "active" {
				note = " (" + k.Status + ")"
			}
			fmt.Fprintf(&b, "  %s: %s%s\n", k.SKU, k.Key, note)
		}
	}
	fmt.Fprintf(&b, "\nReference: %s\n", c.Order)
	return b.String()
}

// send hands msg to the relay. The relay's acceptance of the message is
// the outcome: an error closing the connection afterwards changes nothing,
// since a retry would send it twice.
func (t *Target) send(ctx context.Context, msg *gomail.Msg) storegate.Outcome {
	opts := []gomail.Option{gomail.WithPort(t.cfg.Port), gomail.WithTimeout(t.cfg.Timeout)}
	switch t.cfg.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if t.cfg.RootCAs != nil {
		opts = append(opts, gomail.WithTLSConfig(&tls.Config{ServerName: t.cfg.Host, RootCAs: t.cfg.RootCAs, MinVersion: tls.VersionTLS12}))
	}
	if t.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(t.cfg.Username),
			gomail.WithPassword(t.cfg.Password))
	}
	client, err := gomail.NewClient(t.cfg.Host, opts...)
	if err != nil {
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: "SMTP_CONFIG", Message: err.Error()}
	}
	conn, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return classify("connect to the relay", err)
	}
	err = client.SendWithSMTPClient(conn, msg)
	_ = client.CloseWithSMTPClient(conn)
	if err != nil {
		return classify("send", err)
	}
	return storegate.Outcome{Verdict: storegate.VerdictDone}
}

// classify reads a failure by the relay's reply code: 5xx refuses the
// message for good (a dead letter: a bad address, a refused sender, a
// wrong password), 4xx and no reply at all (refused connection, timeout,
// TLS) are retried, and count against the relay's breaker.
func classify(what string, err error) storegate.Outcome {
	code := replyCode(err)
	msg := what + ": " + err.Error()
	switch {
	case code >= 500:
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: fmt.Sprintf("SMTP_%d", code), Message: msg}
	case code >= 400:
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: fmt.Sprintf("SMTP_%d", code), Message: msg}
	}
	return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "SMTP_UNAVAILABLE", Message: msg}
}

// replyCode is the relay's reply code carried by err; 0 without one.
func replyCode(err error) int {
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() != 0 {
		return se.ErrorCode()
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}
