// Package mailtest is an SMTP relay for tests, listening on 127.0.0.1: it
// keeps every message it accepts, by Message-ID, and can be told to refuse
// messages or to hold a transaction before it accepts anything. It can
// speak TLS (STARTTLS or from the first byte) with a certificate made for
// the test, and require a login.
package mailtest

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/mail"
	"strconv"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the relay accepted.
type Message struct {
	From      string
	To        []string
	MessageID string // with its angle brackets
	Header    mail.Header
	Body      string
}

// Relay is a running test relay.
type Relay struct {
	// Host and Port are where it listens.
	Host string
	Port int

	mu       sync.Mutex
	accepted []Message
	refuse   []*smtp.SMTPError // answers to the next messages' data, in order
	hold     *hold
	login    *login
	logins   []Login
	implicit bool // TLS from the first byte
}

// Login is one AUTH attempt the relay saw: the username, whether the
// password was right, and whether the connection was encrypted by then.
type Login struct {
	Username string
	OK       bool
	TLS      bool
}

// login is the one username and password the relay takes.
type login struct{ username, password string }

// Option sets up a relay.
type Option func(s *smtp.Server, r *Relay)

// WithStartTLS offers STARTTLS with cfg.
func WithStartTLS(cfg *tls.Config) Option {
	return func(s *smtp.Server, _ *Relay) { s.TLSConfig = cfg }
}

// WithImplicitTLS speaks TLS with cfg from the first byte (SMTPS).
func WithImplicitTLS(cfg *tls.Config) Option {
	return func(s *smtp.Server, r *Relay) { s.TLSConfig, r.implicit = cfg, true }
}

// WithLoginInClear offers AUTH over an unencrypted connection too, as a
// careless relay would: a client that sends its password there is wrong.
func WithLoginInClear() Option {
	return func(s *smtp.Server, _ *Relay) { s.AllowInsecureAuth = true }
}

// WithLogin requires AUTH PLAIN with username and password before any
// message; the relay offers AUTH only over TLS unless WithLoginInClear.
func WithLogin(username, password string) Option {
	return func(_ *smtp.Server, r *Relay) { r.login = &login{username, password} }
}

// hold stops the next transaction at its recipient until released.
type hold struct {
	reached chan struct{}
	release chan struct{}
}

// Start starts a relay, stopped at the end of the test.
func Start(t testing.TB, opts ...Option) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port}
	s := smtp.NewServer(r)
	s.Domain = "relay.test"
	for _, o := range opts {
		o(s, r)
	}
	if r.implicit {
		ln = tls.NewListener(ln, s.TLSConfig)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return r
}

// Addr is host:port.
func (r *Relay) Addr() string { return net.JoinHostPort(r.Host, strconv.Itoa(r.Port)) }

// Refuse makes the relay answer the next messages' data with these
// replies, one per message (451 for a transient failure, 550 for good).
func (r *Relay) Refuse(codes ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, code := range codes {
		r.refuse = append(r.refuse, &smtp.SMTPError{Code: code, Message: "refused by the test relay"})
	}
}

// Hold stops the next transaction when it names its recipient, before
// any message data, until release is called; reached is closed when it
// gets there. A client that goes away meanwhile leaves nothing accepted.
func (r *Relay) Hold() (reached <-chan struct{}, release func()) {
	h := &hold{reached: make(chan struct{}), release: make(chan struct{})}
	r.mu.Lock()
	r.hold = h
	r.mu.Unlock()
	var once sync.Once
	return h.reached, func() { once.Do(func() { close(h.release) }) }
}

// Messages are the messages accepted so far, in order.
func (r *Relay) Messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.accepted...)
}

// ByMessageID counts the accepted messages by Message-ID.
func (r *Relay) ByMessageID() map[string]int {
	out := map[string]int{}
	for _, m := range r.Messages() {
		out[m.MessageID]++
	}
	return out
}

// Logins are the AUTH attempts so far, in order.
func (r *Relay) Logins() []Login {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Login(nil), r.logins...)
}

// NewSession is smtp.Backend's.
func (r *Relay) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{relay: r, conn: c}, nil
}

type session struct {
	relay  *Relay
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

// AuthMechanisms is smtp.AuthSession's: PLAIN when the relay wants a login.
func (s *session) AuthMechanisms() []string {
	if s.relay.login == nil {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth is smtp.AuthSession's: it records every attempt.
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		want := s.relay.login
		ok := want != nil && username == want.username && password == want.password
		_, isTLS := s.conn.TLSConnectionState()
		s.relay.mu.Lock()
		s.relay.logins = append(s.relay.logins, Login{Username: username, OK: ok, TLS: isTLS})
		s.relay.mu.Unlock()
		if !ok {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
		}
		s.authed = true
		return nil
	}), nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.relay.login != nil && !s.authed {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.relay.mu.Lock()
	h := s.relay.hold
	s.relay.hold = nil
	s.relay.mu.Unlock()
	if h != nil {
		close(h.reached)
		<-h.release
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(rd io.Reader) error {
	raw, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.relay.mu.Lock()
	defer s.relay.mu.Unlock()
	if len(s.relay.refuse) > 0 {
		e := s.relay.refuse[0]
		s.relay.refuse = s.relay.refuse[1:]
		return e
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return &smtp.SMTPError{Code: 554, Message: "not a message: " + err.Error()}
	}
	body, _ := io.ReadAll(m.Body)
	s.relay.accepted = append(s.relay.accepted, Message{From: s.from, To: s.to, MessageID: m.Header.Get("Message-Id"),
		Header: m.Header, Body: string(body)})
	return nil
}
