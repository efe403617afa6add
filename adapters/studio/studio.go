// Package studio is the studio backend target: a studio's own HTTP service
// that grants and revokes. storegate POSTs JSON commands (fulfill, revoke)
// and user checks to configured URLs, signed with Standard Webhooks
// (webhook-id derived from the command's transaction id, so the receiver can
// dedupe) with every configured secret, so secrets rotate without downtime.
// The contract is published as JSON Schemas in schemas/studio and in
// docs/targets.md.
package studio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"storegate"
	"storegate/adapters"
	"storegate/signing"
)

// Config is one studio backend. Zero fields take the defaults.
type Config struct {
	// URL is the backend's base URL; the paths below are appended.
	// Required.
	URL string
	// Secrets sign every request (whsec_... Standard Webhooks secrets). Each
	// request carries one signature per secret: add the new secret, let the
	// receiver switch, then drop the old one. Required.
	Secrets []string
	// FulfillPath, RevokePath, UserPath and PinCodePath are appended to
	// URL. Defaults /fulfill, /revoke, /users and /pin-codes.
	FulfillPath string
	RevokePath  string
	UserPath    string
	PinCodePath string
	// Client tunes the HTTP client (timeout, in-flight cap, in-call retries).
	Client adapters.ClientConfig
	// Breaker tunes the backend's breaker: one for every call to it,
	// deliveries, user checks and game keys alike.
	Breaker adapters.BreakerConfig
	// Name names the breaker. Default "studio".
	Name string
	// OnBreaker hears the breaker's state changes, for metrics. Optional.
	OnBreaker adapters.BreakerObserver
	// Decode checks an answer against its schema (studio/user_answer) and
	// decodes it: schemas.Set.Decode. Default: plain JSON decoding, for
	// tests of the target alone.
	Decode func(schema string, doc []byte, v any) error
	// Now is the clock (webhook-timestamp). Default time.Now.
	Now func() time.Time
}

// WithDefaults returns c with each zero field set to its default: the one
// place the defaults are written, read by New and Validate and by whoever
// shows them (the YAML config).
func (c Config) WithDefaults() Config {
	if c.FulfillPath == "" {
		c.FulfillPath = "/fulfill"
	}
	if c.RevokePath == "" {
		c.RevokePath = "/revoke"
	}
	if c.UserPath == "" {
		c.UserPath = "/users"
	}
	if c.PinCodePath == "" {
		c.PinCodePath = "/pin-codes"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Name == "" {
		c.Name = "studio"
	}
	if c.Decode == nil {
		c.Decode = func(_ string, doc []byte, v any) error { return json.Unmarshal(doc, v) }
	}
	return c
}

// Validate lists what is wrong with the configuration, as "field: problem".
// Secrets are never quoted.
func (c Config) Validate() []string {
	c = c.WithDefaults()
	var p []string
	if u, err := url.Parse(c.URL); c.URL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		p = append(p, "url: want an http(s) URL")
	}
	if len(c.Secrets) == 0 {
		p = append(p, "secrets: at least one whsec_ secret is required")
	}
	for i, s := range c.Secrets {
		if _, err := signing.SignStandard(s, "check", 0, nil); err != nil {
			p = append(p, fmt.Sprintf("secrets[%d]: not a Standard Webhooks secret (whsec_ + base64)", i))
		}
	}
	for _, path := range []struct{ name, value string }{{"fulfill_path", c.FulfillPath}, {"revoke_path", c.RevokePath}, {"user_path", c.UserPath},
		{"pin_code_path", c.PinCodePath}} {
		if !strings.HasPrefix(path.value, "/") {
			p = append(p, path.name+": want a path starting with /")
		}
	}
	return p
}

// Target delivers commands to a studio backend. It is safe for concurrent
// use.
type Target struct {
	cfg    Config
	base   string
	client *adapters.Client
	users  adapters.Recent[UserAnswer]
}

// New returns a studio backend target.
func New(cfg Config) (*Target, error) {
	cfg = cfg.WithDefaults()
	if p := cfg.Validate(); len(p) > 0 {
		return nil, fmt.Errorf("studio backend: %s", strings.Join(p, "; "))
	}
	client := cfg.Client
	client.Breaker = adapters.NewBreaker(cfg.Name, cfg.Breaker, cfg.Now, cfg.OnBreaker)
	return &Target{cfg: cfg, base: strings.TrimRight(cfg.URL, "/"), client: adapters.NewClient(client, Classify)}, nil
}

// Request is the body of a fulfill or revoke (schemas/studio/fulfill.json and
// revoke.json).
type Request struct {
	Type          string             `json:"type"`
	TransactionID string             `json:"transaction_id"`
	PlayerID      string             `json:"player_id"`
	Platform      storegate.Platform `json:"platform"`
	Source        string             `json:"source,omitempty"`
	OrderRef      string             `json:"order_ref,omitempty"`
	Lines         []storegate.Line   `json:"lines,omitempty"`
	Reverses      string             `json:"reverses,omitempty"`
	Reason        string             `json:"reason,omitempty"`
	CreatedAt     time.Time          `json:"created_at"`
}

// contractLines are the lines as the studio contract has them: without the
// catalog's revocation actions, which the embedded ledger applies and a
// studio backend decides for itself.
func contractLines(lines []storegate.Line) []storegate.Line {
	out := make([]storegate.Line, len(lines))
	for i, l := range lines {
		l.Grants = slices.Clone(l.Grants)
		for j := range l.Grants {
			l.Grants[j].Revocation = ""
		}
		out[i] = l
	}
	return out
}

// Deliver POSTs the command to the fulfill or revoke URL.
func (t *Target) Deliver(ctx context.Context, c storegate.Command) storegate.Outcome {
	req := Request{Type: string(c.Kind), TransactionID: c.ID, PlayerID: c.PlayerID, Platform: c.Platform, Source: c.Source,
		OrderRef: c.OrderRef, Lines: contractLines(c.Lines), CreatedAt: c.CreatedAt.UTC()}
	if req.Platform == "" {
		req.Platform = storegate.PlatformOther
	}
	path := t.cfg.FulfillPath
	switch c.Kind {
	case storegate.KindFulfill:
		if len(c.Lines) == 0 {
			return storegate.Outcome{Verdict: storegate.VerdictDead, Code: "NO_ITEMS", Message: "a fulfillment with no lines"}
		}
	case storegate.KindRevoke:
		path, req.Reverses, req.Reason = t.cfg.RevokePath, c.Reverses, c.Reason
	default:
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: "UNKNOWN_KIND", Message: fmt.Sprintf("unknown command kind %q", c.Kind)}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return storegate.Outcome{Verdict: storegate.VerdictDead, Code: "ENCODE", Message: err.Error()}
	}
	_, out := t.post(ctx, path, WebhookID(c.ID), body)
	return out
}

// post signs and sends one request.
func (t *Target) post(ctx context.Context, path, id string, body []byte) (*nethttp.Response, storegate.Outcome) {
	return t.client.PostSigned(ctx, t.base+path, id, t.cfg.Secrets, t.cfg.Now(), body, nil)
}

// WebhookID is the webhook-id a command is sent with: its transaction id,
// with "%" written %25 and "." written %2E. Standard Webhooks signs
// "{id}.{timestamp}.{body}", so verifiers (storegate's own among them)
// refuse an id holding the separator; the escape is reversible, so distinct
// transaction ids never share a webhook-id. The body's transaction_id
// carries the id verbatim.
func WebhookID(transactionID string) string {
	return webhookEscaper.Replace(transactionID)
}

var webhookEscaper = strings.NewReplacer("%", "%25", ".", "%2E")

// PinCode asks the studio for a game key (Xsolla's get_pincode). The
// request id is the webhook-id, so a repeat is the same message and the
// studio answers it with the same key.
func (t *Target) PinCode(ctx context.Context, r storegate.PinCodeRequest) (string, error) {
	body, err := json.Marshal(struct {
		Type string `json:"type"`
		storegate.PinCodeRequest
	}{"pin_code", r})
	if err != nil {
		return "", err
	}
	resp, out := t.post(ctx, t.cfg.PinCodePath, WebhookID(r.RequestID), body)
	if out.Verdict != storegate.VerdictDone {
		return "", fmt.Errorf("studio pin code: %s %s: %s", out.Verdict, out.Code, out.Message)
	}
	var a struct {
		PinCode string `json:"pin_code"`
	}
	if err := t.cfg.Decode("studio/pin_code_answer", adapters.Body(resp), &a); err != nil {
		return "", fmt.Errorf("studio pin code: answer breaks the contract: %w", err)
	}
	if a.PinCode == "" {
		return "", errors.New("studio pin code: answer has no pin_code")
	}
	return a.PinCode, nil
}

// Classify is the studio classifier: adapters.Classify, plus 425 Too Early
// as "not yet" (a revoke before its fulfillment: retried later, never a
// breaker failure) and the receiver's {"error":{"code","message"}} kept for
// dead-letter inspection.
func Classify(resp *nethttp.Response, err error) storegate.Outcome {
	out := adapters.Classify(resp, err)
	if err != nil || resp == nil || out.Verdict == storegate.VerdictDone {
		return out
	}
	if resp.StatusCode == nethttp.StatusTooEarly {
		out.Deferred, out.Code = true, "NOT_YET"
	}
	var a struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(adapters.Body(resp), &a) == nil && a.Error.Code != "" {
		out.Code = clip(a.Error.Code, 100)
		out.Message = fmt.Sprintf("studio backend answered %d: %s", resp.StatusCode, clip(a.Error.Message, 500))
	}
	return out
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// UserAnswer is the studio's answer to a user check
// (schemas/studio/user_answer.json).
type UserAnswer struct {
	Exists     bool                       `json:"exists"`
	Attributes map[string]json.RawMessage `json:"attributes,omitempty"`
}

// UserExists asks the studio whether a player exists.
func (t *Target) UserExists(ctx context.Context, playerID string) (bool, error) {
	a, err := t.user(ctx, playerID)
	return a.Exists, err
}

// UserAttributes returns what the studio said about the player, for Xsolla's
// user_attributes. A check answered a moment ago is reused: user_validation
// asks both questions in a row.
func (t *Target) UserAttributes(ctx context.Context, playerID string) (map[string]json.RawMessage, error) {
	a, err := t.user(ctx, playerID)
	return a.Attributes, err
}

func (t *Target) user(ctx context.Context, playerID string) (UserAnswer, error) {
	now := t.cfg.Now()
	if a, ok := t.users.Get(playerID, now); ok {
		return a, nil
	}
	body, _ := json.Marshal(map[string]string{"type": "user_check", "player_id": playerID})
	var b [12]byte
	rand.Read(b[:])
	resp, out := t.post(ctx, t.cfg.UserPath, "user_"+hex.EncodeToString(b[:]), body)
	if out.Verdict != storegate.VerdictDone {
		return UserAnswer{}, fmt.Errorf("studio user check: %s %s: %s", out.Verdict, out.Code, out.Message)
	}
	var a UserAnswer
	if err := t.cfg.Decode("studio/user_answer", adapters.Body(resp), &a); err != nil {
		return UserAnswer{}, fmt.Errorf("studio user check: answer breaks the contract: %w", err)
	}
	if a.Exists {
		// Only a "yes" is reused: a stale "no" could refuse a new player's
		// paid order.
		t.users.Put(playerID, a, now)
	}
	return a, nil
}
