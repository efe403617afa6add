// Package connectors asks platforms, through a studio, for a player's
// orders: the pull side of Fulfill Orders. A connector answers with each
// order in its current state, written as a store event
// (schemas/stores/<platform>.json), so pulled orders and proxied events map
// the same way. HTTP is the connector a studio deploys; Simulator stands in
// for a platform in tests.
package connectors

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"storegate/signing"
)

// HTTPConfig configures an HTTP connector.
type HTTPConfig struct {
	// URL receives POST {"player_id","platform","since"}. Required.
	URL string
	// Secrets sign each request with Standard Webhooks (every secret, for
	// rotation), so the studio knows the request is storegate's. Required.
	Secrets []string
	// Timeout bounds one request. Default 5s.
	Timeout time.Duration
	// MaxBytes caps the answer. Default 1 MiB.
	MaxBytes int64
	// Client is the HTTP client. Default: a client with Timeout.
	Client *http.Client
	// Now is the clock (webhook-timestamp). Default time.Now.
	Now func() time.Time
}

// HTTP is a connector that asks a studio's endpoint.
type HTTP struct {
	cfg HTTPConfig
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
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 20
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &HTTP{cfg: cfg}, nil
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
	headers, err := signing.StandardHeaders(h.cfg.Secrets, "fo_"+hex.EncodeToString(id[:]), h.cfg.Now().Unix(), body)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		hr.Header.Set(k, v)
	}
	resp, err := h.cfg.Client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConnector, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, h.cfg.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read answer: %v", ErrConnector, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: answered HTTP %d", ErrConnector, resp.StatusCode)
	}
	if int64(len(raw)) > h.cfg.MaxBytes {
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
