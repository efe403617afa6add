package revocation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"storegate"
	"storegate/adapters"
	"storegate/ledger"
	"storegate/signing"
)

// HTTPConfig configures the HTTP JSON client. Zero fields take the defaults.
type HTTPConfig struct {
	// URL receives each entry as a POST. Required.
	URL string
	// Secrets sign every request with Standard Webhooks (whsec_...; with
	// several, each signs, for rotation). Required.
	Secrets []string
	// Timeout bounds one call, its in-call retries included. Default 2s.
	Timeout time.Duration
	// Client tunes the HTTP client (in-flight cap, in-call retries); its
	// Timeout is this Timeout.
	Client adapters.ClientConfig
	// Now is the clock of the signature's timestamp. Default time.Now.
	Now func() time.Time
}

// HTTP calls a revocation service over HTTP: the plugin contract as JSON.
type HTTP struct {
	cfg    HTTPConfig
	client *adapters.Client
}

// WithDefaults returns c with each zero field set to its default, as NewHTTP
// uses it.
func (c HTTPConfig) WithDefaults() HTTPConfig {
	if c.Timeout <= 0 {
		c.Timeout = defaultTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Client.Timeout = c.Timeout
	return c
}

// NewHTTP returns a client, refusing a config it could not sign with.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	if cfg.URL == "" {
		return nil, errors.New("revocation: http url is required")
	}
	if _, err := signing.StandardHeaders(cfg.Secrets, "probe", 0, nil); err != nil {
		return nil, fmt.Errorf("revocation: http secrets: %w", err)
	}
	cfg = cfg.WithDefaults()
	return &HTTP{cfg: cfg, client: adapters.NewClient(cfg.Client, nil)}, nil
}

// HTTPRequest is the body POSTed: RevokeRequest's fields with their proto
// names, plus the request id and storegate's own context.
type HTTPRequest struct {
	RequestID       string        `json:"requestId"`
	RevokeEntryType string        `json:"revokeEntryType"`
	UserID          string        `json:"userId"`
	Namespace       string        `json:"namespace"`
	Quantity        int64         `json:"quantity"`
	Item            *HTTPItem     `json:"item,omitempty"`
	Currency        *HTTPCurrency `json:"currency,omitempty"`
	Platform        string        `json:"platform"`
	TransactionID   string        `json:"transactionId"`
	Reverses        string        `json:"reverses,omitempty"`
}

// HTTPItem is RevokeItemObject.
type HTTPItem struct {
	ItemID          string `json:"itemId"`
	ItemSKU         string `json:"itemSku"`
	ItemType        string `json:"itemType"`
	UseCount        int64  `json:"useCount"`
	EntitlementType string `json:"entitlementType"`
}

// HTTPCurrency is RevokeCurrencyObject.
type HTTPCurrency struct {
	Namespace     string `json:"namespace"`
	CurrencyCode  string `json:"currencyCode"`
	BalanceOrigin string `json:"balanceOrigin"`
}

// WebhookID is the Standard Webhooks id of a request: derived from the
// request id (which may hold '.', which webhook ids may not), so it too is
// stable across retries.
func WebhookID(requestID string) string {
	sum := sha256.Sum256([]byte(requestID))
	return "rv_" + hex.EncodeToString(sum[:16])
}

// Revoke posts one entry. A 2xx answer must be {"status","reason",
// "customRevocation"}; any other answer, or none, is an error and the
// ledger retries the revoke later with the same request id.
func (h *HTTP) Revoke(ctx context.Context, r ledger.CustomRequest) (ledger.CustomAnswer, error) {
	body := HTTPRequest{RequestID: r.RequestID, RevokeEntryType: r.EntryType, UserID: r.UserID, Namespace: r.Namespace,
		Quantity: r.Quantity, Platform: string(r.Platform), TransactionID: r.TransactionID, Reverses: r.Reverses}
	if r.Item != nil {
		body.Item = &HTTPItem{ItemID: r.Item.ItemID, ItemSKU: r.Item.ItemSKU, ItemType: r.Item.ItemType, UseCount: r.Item.UseCount,
			EntitlementType: r.Item.EntitlementType}
	}
	if r.Currency != nil {
		body.Currency = &HTTPCurrency{Namespace: r.Currency.Namespace, CurrencyCode: r.Currency.CurrencyCode, BalanceOrigin: r.Currency.BalanceOrigin}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return ledger.CustomAnswer{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	resp, out := h.client.PostSigned(ctx, h.cfg.URL, WebhookID(r.RequestID), h.cfg.Secrets, h.cfg.Now(), raw,
		http.Header{RequestIDHeader: {r.RequestID}})
	if out.Verdict != storegate.VerdictDone {
		return ledger.CustomAnswer{}, fmt.Errorf("%s %s", out.Code, out.Message)
	}
	var answer ledger.CustomAnswer
	if err := json.Unmarshal(adapters.Body(resp), &answer); err != nil {
		return ledger.CustomAnswer{}, fmt.Errorf("answer is not the contract's JSON: %w", err)
	}
	return answer, nil
}
