// Package mailtest is an SMTP relay for tests, listening on 127.0.0.1: it
// keeps every message it accepts, by Message-ID, and can be told to refuse
// messages or to hold a transaction before it accepts anything.
package mailtest

import (
	"bytes"
	"io"
	"net"
	"net/mail"
	"strconv"
	"sync"
	"testing"

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
}

// hold stops the next transaction at its recipient until released.
type hold struct {
	reached chan struct{}
	release chan struct{}
}

// Start starts a relay, stopped at the end of the test.
func Start(t testing.TB) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port}
	s := smtp.NewServer(r)
	s.Domain = "relay.test"
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

// NewSession is smtp.Backend's.
func (r *Relay) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{relay: r}, nil }

type session struct {
	relay *Relay
	from  string
	to    []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
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
