package adapters

import (
	"context"
	"net/http"
	"time"

	"storegate"
	"storegate/signing"
)

// PostSigned POSTs a JSON body signed with Standard Webhooks: webhook-id id,
// webhook-timestamp now, one signature per secret (so a receiver can move to
// a new secret while the old one still verifies). header adds to the
// request's headers. Every outbound call storegate signs goes through here:
// studio commands, order connectors, custom revocation services.
func (c *Client) PostSigned(ctx context.Context, url, id string, secrets []string, now time.Time, body []byte,
	header http.Header) (*http.Response, storegate.Outcome) {
	signed, err := signing.StandardHeaders(secrets, id, now.Unix(), body)
	if err != nil {
		return nil, storegate.Outcome{Verdict: storegate.VerdictDead, Code: "SIGN", Message: err.Error()}
	}
	h := http.Header{}
	for k, vs := range header {
		h[k] = vs
	}
	for k, v := range signed {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	return c.Do(ctx, http.MethodPost, url, body, h)
}
