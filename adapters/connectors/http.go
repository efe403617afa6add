// Package connectors asks platforms, through a studio, for a player's
// orders: the pull side of Fulfill Orders. A connector answers with each
// order in its current state, written as a store event
// (schemas/stores/<platform>.json), so pulled orders and proxied events map
// the same way. HTTP is the connector a studio deploys; Simulator stands in
// for a platform in tests.
package connectors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"storegate/adapters"
	"storegate/signing"
)

// HTTPConfig configures an HTTP connector.
type HTTPConfig struct {
	// URL receives POST {"player_id","platform","since"}. Required.
	URL string
	// Secrets sign each request with Standard Webhooks (every secret, for
	// rotation), so the studio knows the request is storegate's. Required.
	Secrets []string
	// Timeout bounds one call, its in-call retries included. Default 5s.
	Timeout time.Duration
	// MaxBytes caps the answer; at most (and by default) 1 MiB.
	MaxBytes int
	// Client tunes the HTTP client (in-flight cap, in-call retries); its
	// Timeout is this Timeout.
	Client adapters.ClientConfig
	// Now is the clock (webhook-timestamp). Default time.Now.
	Now func() time.Time
}

// HTTP is a connector that asks a studio's endpoint.
type HTTP struct {
	cfg    HTTPConfig
	client *adapters.Client
}

// NewHTTP checks the config and returns the connector.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	if cfg.URL == "" {
		return nil, errors.New("connectors: url is required")
	}
	if _, err := signing.StandardHeaders(cfg.Secrets, "check", 0, nil); err != nil {
		return nil, fmt.Errorf("connectors: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxBytes <= 0 || cfg.MaxBytes > adapters.MaxBody {
		cfg.MaxBytes = adapters.MaxBody
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Client.Timeout = cfg.Timeout
	return &HTTP{cfg: cfg, client: adapters.NewClient(cfg.Client, nil)}, nil
}

// MaxOrders caps the orders of one answer.
const MaxOrders = 1000

// ErrConnector wraps every failure to get a usable answer.
var ErrConnector = errors.New("order connector failed")

// Orders asks for the player's orders on platform that changed at or after
// since (the zero time: all of them).
func (h *HTTP) Orders(ctx context.Context, playerID, platform string, since time.Time) ([]json.RawMessage, error) {
	req := struct {
		PlayerID string     `json:"player_id"`
		Platform string     `json:"platform"`
		Since    *time.Time `json:"since"`
	}{PlayerID: playerID, Platform: platform}
	if !since.IsZero() {
		s := since.UTC()
		req.Since = &s
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var id [12]byte
	rand.Read(id[:])
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	resp, out := h.client.PostSigned(ctx, h.cfg.URL, "fo_"+hex.EncodeToString(id[:]), h.cfg.Secrets, h.cfg.Now(), body, nil)
	if resp == nil {
		return nil, fmt.Errorf("%w: %s %s", ErrConnector, out.Code, out.Message)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: answered HTTP %d", ErrConnector, resp.StatusCode)
	}
	raw := adapters.Body(resp)
	if len(raw) > h.cfg.MaxBytes {
		return nil, fmt.Errorf("%w: answer larger than %d bytes", ErrConnector, h.cfg.MaxBytes)
	}
	var answer struct {
		Orders *[]json.RawMessage `json:"orders"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil || answer.Orders == nil {
		return nil, fmt.Errorf("%w: answer is not {\"orders\":[...]}", ErrConnector)
	}
	if len(*answer.Orders) > MaxOrders {
		return nil, fmt.Errorf("%w: more than %d orders in one answer", ErrConnector, MaxOrders)
	}
	return *answer.Orders, nil
}
