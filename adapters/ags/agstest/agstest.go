// Package agstest is a fake AccelByte Gaming Services for tests: IAM
// client-credentials tokens, fulfillments by transaction id (v2 and v3) with
// /retry and /revoke, doRevocation keyed by requestId, the fulfillment query
// and the IAM user lookup, behaving as protocols.md §3 describes. It counts
// the effect of every transaction, so a test can check that each took
// effect exactly once however often it was sent, and it plays scripted
// failures: statuses with AGS error codes, Retry-After, hangs, lost answers
// (the effect happens, the answer does not arrive) and outages.
package agstest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"storegate/internal/fakebackend"
)

// Fault is one scripted failure, used by the next request of its kind.
type Fault struct {
	// Kind is the request it applies to: fulfill, retry, revoke,
	// revocation, query, user, token, or "" for any Platform call.
	Kind string
	// Status and ErrorCode/ErrorMessage make the answer (an ErrorEntity).
	Status       int
	ErrorCode    int
	ErrorMessage string
	// RetryAfter is sent as the Retry-After header.
	RetryAfter string
	// Hang delays the answer; a client with a shorter timeout gives up.
	Hang time.Duration
	// AfterEffect applies the request before failing: a lost answer.
	AfterEffect bool
	// State, for a fulfill, makes AGS record the fulfillment in this state
	// (FULFILL_FAILED), and for a revoke answers it (REVOKE_FAILED: nothing
	// is taken back, the fulfillment stays revocable), with a 200 or with
	// Status (a v2 409 carrying the result), instead of failing.
	State string
}

// Server is the fake. Create it with New; it is safe for concurrent use.
type Server struct {
	URL          string
	Namespace    string
	ClientID     string
	ClientSecret string
	// TokenLife is the expires_in of tokens. Default 1h.
	TokenLife time.Duration

	// Script queues faults; SetDown starts or ends an outage (every
	// request 503).
	fakebackend.Queue[Fault]
	// Effects, Requests, Body and Calls tell what AGS saw. Keys are
	// "fulfill:<transactionId>" (retries of a failed fulfillment count
	// there too), "revoke:<transactionId>" and "revocation:<requestId>".
	fakebackend.Record

	srv *httptest.Server

	mu           sync.Mutex
	tokensIssued int
	tokens       map[string]bool
	users        map[string]bool // nil: every user exists
	profiles     map[string]map[string]any
	unknownItems map[string]bool
	fulfillments map[string]*fulfillment
	revocations  map[string][]byte
	paths        map[string]string
}

type fulfillment struct {
	UserID string
	Body   []byte
	Items  []json.RawMessage
	State  string
}

// New starts a fake AGS on 127.0.0.1.
func New() *Server {
	s := &Server{Namespace: "game", ClientID: "storegate-client", ClientSecret: "s3cret-client", TokenLife: time.Hour,
		tokens: map[string]bool{}, unknownItems: map[string]bool{}, fulfillments: map[string]*fulfillment{},
		revocations: map[string][]byte{}, paths: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetUsers limits the users that exist (nil: all of them).
func (s *Server) SetUsers(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users = map[string]bool{}
	for _, id := range ids {
		s.users[id] = true
	}
}

// SetProfile adds IAM user fields (country, displayName, dateOfBirth, ...)
// to a user's answer.
func (s *Server) SetProfile(id string, fields map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.profiles == nil {
		s.profiles = map[string]map[string]any{}
	}
	s.profiles[id] = fields
}

// SetItemUnknown makes a SKU (or item id) missing from the catalog, or
// present again.
func (s *Server) SetItemUnknown(sku string, unknown bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unknownItems[sku] = unknown
}

// RevokeTokens invalidates every token issued so far.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// TokensIssued counts the tokens IAM issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokensIssued
}

// Path returns the URL path of the last request for a key like Effects'.
func (s *Server) Path(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paths[key]
}

// State returns a fulfillment's state ("" if unknown).
func (s *Server) State(transactionID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.fulfillments[transactionID]; f != nil {
		return f.State
	}
	return ""
}

func errorEntity(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errorCode": code, "errorMessage": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// route names the request: its kind and the transaction it is about.
func (s *Server) route(r *http.Request) (kind, user, id string) {
	p := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	unescape := func(v string) string {
		out, err := url.PathUnescape(v)
		if err != nil {
			return v
		}
		return out
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/iam/v3/oauth/token":
		return "token", "", ""
	case r.Method == http.MethodGet && len(p) == 7 && p[0] == "iam" && p[5] == "users":
		return "user", unescape(p[6]), ""
	case r.Method == http.MethodGet && len(p) == 6 && p[0] == "platform" && p[5] == "fulfillments":
		return "query", r.URL.Query().Get("userId"), r.URL.Query().Get("transactionId")
	case r.Method == http.MethodPut && len(p) == 7 && p[0] == "platform" && p[6] == "revocation":
		return "revocation", unescape(p[5]), ""
	case r.Method == http.MethodPut && len(p) >= 8 && p[0] == "platform" && (p[1] == "v2" || p[1] == "v3") && p[7] == "fulfillments":
		if len(p) == 9 {
			return "fulfill", unescape(p[6]), unescape(p[8])
		}
		if len(p) == 10 && (p[9] == "retry" || p[9] == "revoke") {
			return p[9], unescape(p[6]), unescape(p[8])
		}
	}
	return "", "", ""
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	kind, user, id := s.route(r)
	s.Call()
	if kind == "" {
		errorEntity(w, http.StatusNotFound, 20008, "no such route in the fake: "+r.Method+" "+r.URL.Path)
		return
	}
	down, fault := s.Next(func(f Fault) bool { return f.Kind == kind || (f.Kind == "" && kind != "token" && kind != "user") })
	if down {
		errorEntity(w, http.StatusServiceUnavailable, 20000, "service unavailable")
		return
	}
	s.mu.Lock()
	if kind != "token" {
		if !s.authorised(r) {
			s.mu.Unlock()
			errorEntity(w, http.StatusUnauthorized, 20001, "unauthorized access")
			return
		}
	}
	if fault != nil && !fault.AfterEffect && fault.Status != 0 && fault.State == "" {
		s.mu.Unlock()
		s.fail(w, r, fault)
		return
	}
	status, answer := s.apply(kind, user, id, body, r, fault)
	if fault != nil && fault.State != "" && fault.Status != 0 {
		status = fault.Status
	}
	s.mu.Unlock()
	if fault != nil && fault.AfterEffect {
		s.fail(w, r, fault)
		return
	}
	if fault != nil && fault.Hang > 0 {
		fakebackend.Sleep(r, fault.Hang)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(answer)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, f *Fault) {
	if f.Hang > 0 && !fakebackend.Sleep(r, f.Hang) {
		return
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	errorEntity(w, status, f.ErrorCode, f.ErrorMessage)
}

func (s *Server) authorised(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && s.tokens[token]
}

// apply runs one request against the fake's state; s.mu is held.
func (s *Server) apply(kind, user, id string, body []byte, r *http.Request, fault *Fault) (int, any) {
	switch kind {
	case "token":
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(s.ClientID+":"+s.ClientSecret))
		if r.Header.Get("Authorization") != want || formValue(body, "grant_type") != "client_credentials" {
			return http.StatusUnauthorized, map[string]any{"error": "invalid_client"}
		}
		s.tokensIssued++
		token := fmt.Sprintf("token-%d", s.tokensIssued)
		s.tokens[token] = true
		return http.StatusOK, map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": int64(s.TokenLife / time.Second)}

	case "user":
		if s.users != nil && !s.users[user] {
			return http.StatusNotFound, map[string]any{"errorCode": 20008, "errorMessage": "user not found"}
		}
		ans := map[string]any{"userId": user, "namespace": s.Namespace}
		for k, v := range s.profiles[user] {
			ans[k] = v
		}
		return http.StatusOK, ans

	case "query":
		var data []any
		if f := s.fulfillments[id]; f != nil && f.UserID == user {
			data = append(data, map[string]any{"transactionId": id, "userId": user, "state": f.State})
		}
		return http.StatusOK, map[string]any{"data": data, "paging": map[string]any{}}

	case "fulfill":
		key := "fulfill:" + id
		s.Request(key, body)
		s.paths[key] = r.URL.Path
		var req struct {
			Items []json.RawMessage `json:"items"`
		}
		if json.Unmarshal(body, &req) != nil || len(req.Items) == 0 {
			return http.StatusBadRequest, map[string]any{"errorCode": 20002, "errorMessage": "validation error"}
		}
		if f := s.fulfillments[id]; f != nil {
			if string(f.Body) != string(body) || f.UserID != user {
				return http.StatusBadRequest, map[string]any{"errorCode": 38128, "errorMessage": "Cannot retry fulfillment with different payload"}
			}
			return http.StatusOK, s.result(id, f)
		}
		for _, raw := range req.Items {
			var it struct {
				ItemSku string `json:"itemSku"`
				ItemID  string `json:"itemId"`
			}
			json.Unmarshal(raw, &it)
			if s.unknownItems[it.ItemSku] && it.ItemSku != "" {
				return http.StatusNotFound, map[string]any{"errorCode": 30343, "errorMessage": "Item of sku [" + it.ItemSku + "] does not exist"}
			}
			if s.unknownItems[it.ItemID] && it.ItemID != "" {
				return http.StatusNotFound, map[string]any{"errorCode": 30341, "errorMessage": "Item [" + it.ItemID + "] does not exist"}
			}
		}
		f := &fulfillment{UserID: user, Body: body, Items: req.Items, State: "FULFILLED"}
		if fault != nil && fault.State != "" {
			f.State = fault.State
		}
		s.fulfillments[id] = f
		if f.State == "FULFILLED" {
			s.Effect(key)
		}
		return http.StatusOK, s.result(id, f)

	case "retry":
		key := "fulfill:" + id
		s.Request(key, body)
		f := s.fulfillments[id]
		if f == nil || f.UserID != user {
			return http.StatusNotFound, map[string]any{"errorCode": 38144, "errorMessage": "Fulfillment with transactionId [" + id + "] does not exist"}
		}
		if f.State == "FULFILL_FAILED" {
			f.State = "FULFILLED"
			s.Effect(key)
		}
		return http.StatusOK, s.result(id, f)

	case "revoke":
		key := "revoke:" + id
		s.Request(key, body)
		s.paths[key] = r.URL.Path
		f := s.fulfillments[id]
		if f == nil || f.UserID != user {
			return http.StatusNotFound, map[string]any{"errorCode": 38145, "errorMessage": "Fulfillment with transactionId [" + id + "] does not exist"}
		}
		if len(body) > 0 {
			// Revoke Fulfillment takes no body.
			return http.StatusBadRequest, map[string]any{"errorCode": 20002, "errorMessage": "validation error: unexpected body"}
		}
		if fault != nil && fault.State == "REVOKE_FAILED" {
			if f.State == "FULFILLED" {
				f.State = "REVOKE_FAILED"
			}
			return http.StatusOK, s.revokeResult(id, f, "REVOKE_FAILED")
		}
		if f.State == "FULFILLED" || f.State == "REVOKE_FAILED" {
			f.State = "REVOKED"
			s.Effect(key)
		}
		return http.StatusOK, s.revokeResult(id, f, f.State)

	case "revocation":
		var req struct {
			RequestID     string            `json:"requestId"`
			TransactionID string            `json:"transactionId"`
			Source        string            `json:"source"`
			RevokeEntries []json.RawMessage `json:"revokeEntries"`
		}
		if json.Unmarshal(body, &req) != nil || req.RequestID == "" || len(req.RevokeEntries) == 0 {
			return http.StatusBadRequest, map[string]any{"errorCode": 20002, "errorMessage": "validation error"}
		}
		key := "revocation:" + req.RequestID
		s.Request(key, body)
		if prev, ok := s.revocations[req.RequestID]; ok {
			if string(prev) != string(body) {
				return http.StatusConflict, map[string]any{"errorCode": 41171, "errorMessage": "different payload for the same requestId"}
			}
			return http.StatusOK, map[string]any{"requestId": req.RequestID, "status": "SUCCESS", "isReplayed": true}
		}
		s.revocations[req.RequestID] = body
		s.Effect(key)
		return http.StatusOK, map[string]any{"requestId": req.RequestID, "status": "SUCCESS", "isReplayed": false}
	}
	return http.StatusNotFound, nil
}

func (s *Server) result(id string, f *fulfillment) map[string]any {
	res := map[string]any{"transactionId": id, "userId": f.UserID, "namespace": s.Namespace, "state": f.State,
		"stateInfo": map[string]any{"successList": []any{}, "failedList": []any{}}}
	if f.State == "FULFILL_FAILED" {
		res["stateInfo"] = map[string]any{"successList": []any{}, "failedList": []any{
			map[string]any{"itemSku": "first-item", "error": "wallet is inactive"}}}
	}
	return res
}

// revokeResult is a RevokeFulfillmentV2Result (the answer of Revoke
// Fulfillment v2 and v3): every item of the fulfillment is an in-game item
// with one entitlement, revoked under AGS's default strategy, or failed with
// a reason when state is REVOKE_FAILED.
func (s *Server) revokeResult(id string, f *fulfillment, state string) map[string]any {
	items, itemRevs, entRevs := []any{}, []any{}, []any{}
	success, failed := []any{}, []any{}
	for i, raw := range f.Items {
		var it struct {
			ItemSku  string `json:"itemSku"`
			ItemID   string `json:"itemId"`
			Quantity int64  `json:"quantity"`
			Origin   string `json:"entitlementOrigin"`
		}
		json.Unmarshal(raw, &it)
		itemID := it.ItemID
		if itemID == "" {
			itemID = "item-" + it.ItemSku
		}
		items = append(items, map[string]any{"itemId": itemID, "itemSku": it.ItemSku, "itemType": "INGAMEITEM", "quantity": it.Quantity})
		ent := map[string]any{"entitlementId": fmt.Sprintf("ent-%s-%d", id, i), "itemId": itemID, "itemSku": it.ItemSku,
			"quantity": it.Quantity, "revocationStrategy": "REVOKE_OR_REPORT", "skipped": false, "status": "SUCCESS"}
		ir := map[string]any{"itemId": itemID, "itemSku": it.ItemSku, "itemType": "INGAMEITEM", "quantity": it.Quantity,
			"entitlementOrigin": it.Origin, "strategy": "REVOKE_OR_REPORT", "skipped": false, "status": "SUCCESS"}
		entry := map[string]any{"itemId": itemID, "itemSku": it.ItemSku}
		if state == "REVOKE_FAILED" {
			reason := "entitlement was consumed"
			ent["status"], ent["reason"] = "FAIL", reason
			ir["status"], ir["reason"] = "FAIL", reason
			entry["error"] = reason
			failed = append(failed, entry)
		} else {
			success = append(success, entry)
		}
		ir["entitlementRevocations"] = []any{ent}
		itemRevs, entRevs = append(itemRevs, ir), append(entRevs, ent)
	}
	return map[string]any{"id": "revocation-" + id, "namespace": s.Namespace, "userId": f.UserID, "transactionId": id,
		"items": items, "state": state, "stateInfo": map[string]any{"successList": success, "failedList": failed},
		"itemRevocations": itemRevs, "entitlementRevocations": entRevs, "creditRevocations": []any{}}
}

func formValue(body []byte, key string) string {
	v, _ := url.ParseQuery(string(body))
	return v.Get(key)
}
