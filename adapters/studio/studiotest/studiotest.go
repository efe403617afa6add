// Package studiotest is a fake studio backend for tests, and a reference
// for a studio writing its own receiver: it verifies the Standard Webhooks
// signature over the raw body, validates the body against the published
// schema, applies each transaction id at most once, answers 425 to a revoke
// whose fulfillment it has not seen, and answers user checks. Tests script
// failures (statuses, Retry-After, hangs, lost answers, outages) and read
// back how many times each transaction took effect.
package studiotest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"storegate/adapters/studio"
	"storegate/internal/fakebackend"
	"storegate/schemas"
	"storegate/signing"
)

// Fault is one scripted failure, used by the next request of its kind.
type Fault struct {
	// Kind is fulfill, revoke, user, or "" for any command.
	Kind       string
	Status     int
	RetryAfter string
	// Code and Message go in the {"error":{...}} answer.
	Code    string
	Message string
	// Hang delays the answer (a client with a shorter timeout gives up);
	// with Status 0 the command takes effect first.
	Hang time.Duration
	// AfterEffect applies the command before failing: a lost answer.
	AfterEffect bool
}

// Server is the fake. Create it with New; it is safe for concurrent use.
type Server struct {
	URL string

	// Script queues faults; SetDown starts or ends an outage (every
	// request 503).
	fakebackend.Queue[Fault]
	// Effects, Requests, Body and Calls tell what the backend saw, by
	// transaction id.
	fakebackend.Record

	srv      *httptest.Server
	verifier *signing.Standard
	schemas  *schemas.Set

	mu       sync.Mutex
	rejected map[string]bool
	users    map[string]map[string]any // nil: every player exists
	keys     map[string]string         // pin codes handed out, by request id
	granted  map[string]bool
	problems []string
}

// New starts a fake studio backend on 127.0.0.1 that accepts signatures
// made with any of secrets.
func New(secrets ...string) (*Server, error) {
	v, err := signing.NewStandard(secrets, signing.StandardConfig{})
	if err != nil {
		return nil, err
	}
	set, err := schemas.Load()
	if err != nil {
		return nil, err
	}
	s := &Server{verifier: v, schemas: set, rejected: map[string]bool{}, granted: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Reject makes fulfillments of a SKU fail for good (400 UNKNOWN_SKU), or
// lifts that.
func (s *Server) Reject(sku string, reject bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected[sku] = reject
}

// SetUser makes a player exist with these attributes (nil for none). Once
// one player is set, only set players exist.
func (s *Server) SetUser(id string, attributes map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == nil {
		s.users = map[string]map[string]any{}
	}
	s.users[id] = attributes
}

// KeysHandedOut is how many distinct pin codes the studio gave.
func (s *Server) KeysHandedOut() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// Problems lists the contract violations seen: bad signatures, bodies that
// fail their schema, a webhook-id that does not match the transaction id.
func (s *Server) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...)
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func errorAnswer(w http.ResponseWriter, status int, code, message string) {
	answer(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

// command is the part of a request the receiver acts on.
type command struct {
	Type          string `json:"type"`
	TransactionID string `json:"transaction_id"`
	PlayerID      string `json:"player_id"`
	Reverses      string `json:"reverses"`
	RequestID     string `json:"request_id"`
	Lines         []struct {
		SKU string `json:"sku"`
	} `json:"lines"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// 1. The raw bytes, exactly as sent: the signature covers them.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		errorAnswer(w, http.StatusBadRequest, "BAD_BODY", "unreadable body")
		return
	}
	s.Call()
	kind := map[string]string{"/fulfill": "fulfill", "/revoke": "revoke", "/users": "user", "/pin-codes": "pin_code"}[r.URL.Path]
	if r.Method != http.MethodPost || kind == "" {
		errorAnswer(w, http.StatusNotFound, "NOT_FOUND", "no such route")
		return
	}
	// 2. Who sent it: Standard Webhooks, any of our secrets, timestamp
	// within five minutes.
	if err := s.verifier.Verify(r.Header.Get, body); err != nil {
		s.problem("signature: %v", err)
		errorAnswer(w, http.StatusUnauthorized, "INVALID_SIGNATURE", "signature does not verify")
		return
	}
	// 3. The contract: the published schema.
	schema := map[string]string{"fulfill": "studio/fulfill", "revoke": "studio/revoke", "user": "studio/user_check",
		"pin_code": "studio/pin_code"}[kind]
	if err := s.schemas.Validate(schema, body); err != nil {
		s.problem("%s: %v", schema, err)
		errorAnswer(w, http.StatusBadRequest, "INVALID_PARAMETER", err.Error())
		return
	}
	var c command
	json.Unmarshal(body, &c)
	if kind == "pin_code" && r.Header.Get("webhook-id") != studio.WebhookID(c.RequestID) {
		s.problem("webhook-id %q does not carry request_id %q", r.Header.Get("webhook-id"), c.RequestID)
	}
	if kind != "user" && kind != "pin_code" && r.Header.Get("webhook-id") != studio.WebhookID(c.TransactionID) {
		s.problem("webhook-id %q does not carry transaction_id %q", r.Header.Get("webhook-id"), c.TransactionID)
	}

	down, fault := s.Next(func(f Fault) bool { return f.Kind == kind || (f.Kind == "" && kind != "user") })
	if down {
		errorAnswer(w, http.StatusServiceUnavailable, "UNAVAILABLE", "down for maintenance")
		return
	}
	if fault != nil && fault.Status != 0 && !fault.AfterEffect {
		s.fail(w, r, fault)
		return
	}
	s.mu.Lock()
	status, ans := s.apply(kind, c, body)
	s.mu.Unlock()
	if fault != nil && fault.Hang > 0 && !fakebackend.Sleep(r, fault.Hang) {
		return
	}
	if fault != nil && fault.AfterEffect {
		s.fail(w, r, fault)
		return
	}
	answer(w, status, ans)
}

// apply acts on one request; s.mu is held. 4. Dedupe: a transaction id
// seen before answers 2xx and changes nothing.
func (s *Server) apply(kind string, c command, body []byte) (int, any) {
	switch kind {
	case "user":
		if s.users == nil {
			return http.StatusOK, map[string]any{"exists": true}
		}
		attrs, ok := s.users[c.PlayerID]
		if !ok {
			return http.StatusOK, map[string]any{"exists": false}
		}
		ans := map[string]any{"exists": true}
		if len(attrs) > 0 {
			ans["attributes"] = attrs
		}
		return http.StatusOK, ans
	case "pin_code":
		// One key per request id, however often it is asked for.
		if s.keys == nil {
			s.keys = map[string]string{}
		}
		if _, ok := s.keys[c.RequestID]; !ok {
			s.keys[c.RequestID] = fmt.Sprintf("KEY-%04d", len(s.keys)+1)
		}
		return http.StatusOK, map[string]string{"pin_code": s.keys[c.RequestID]}
	}
	s.Request(c.TransactionID, body)
	if s.Effected(c.TransactionID) > 0 {
		return http.StatusOK, map[string]string{"status": "duplicate"}
	}
	switch kind {
	case "fulfill":
		for _, l := range c.Lines {
			if s.rejected[l.SKU] {
				return http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "UNKNOWN_SKU", "message": "no item " + l.SKU + " in the game"}}
			}
		}
		s.granted[c.TransactionID] = true
	case "revoke":
		if c.Reverses != "" && !s.granted[c.Reverses] {
			return http.StatusTooEarly, map[string]any{"error": map[string]string{"code": "NOT_GRANTED_YET", "message": c.Reverses + " has not been fulfilled"}}
		}
	}
	s.Effect(c.TransactionID)
	return http.StatusOK, map[string]string{"status": "done"}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, f *Fault) {
	if f.Hang > 0 && f.Status != 0 && !f.AfterEffect && !fakebackend.Sleep(r, f.Hang) {
		return
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	code := f.Code
	if code == "" {
		code = http.StatusText(status)
	}
	errorAnswer(w, status, code, f.Message)
}

func (s *Server) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
}
