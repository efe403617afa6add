package ags

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"storegate"
	"storegate/adapters"
)

// tokens is the IAM client-credentials token, cached until shortly before it
// expires. One fetch runs at a time; callers waiting for it give up with
// their context.
type tokens struct {
	client       *adapters.Client
	url          string
	clientID     string
	clientSecret string
	now          func() time.Time

	lock    chan struct{} // a mutex that a context can abandon
	token   string
	refresh time.Time // when the cached token stops being used
}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// get returns a valid token, fetching one if none is cached. The failure is
// an outcome for the command: IAM down is a retry, credentials refused are
// a dead letter (replay it once the configuration is fixed).
func (t *tokens) get(ctx context.Context) (string, *storegate.Outcome) {
	select {
	case t.lock <- struct{}{}:
	case <-ctx.Done():
		return "", &storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "IAM_TOKEN", Message: "waiting for an IAM token: " + ctx.Err().Error()}
	}
	defer func() { <-t.lock }()
	if t.token != "" && t.now().Before(t.refresh) {
		return t.token, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("Accept", "application/json")
	// HTTP Basic, as IAM wants it; the header never reaches a log or an error.
	h.Set("Authorization", "Basic "+basic(t.clientID, t.clientSecret))
	resp, out := t.client.Do(ctx, http.MethodPost, t.url, []byte(form), h)
	if out.Verdict == storegate.VerdictWait {
		return "", &out // IAM's breaker is open: its outcome says when to ask again
	}
	if out.Verdict != storegate.VerdictDone {
		out.Code = "IAM_TOKEN"
		out.Message = "IAM token request failed: " + out.Message
		if out.Verdict == storegate.VerdictDead {
			out.Message += " (are the client id and secret right?)"
		}
		return "", &out
	}
	var a tokenAnswer
	if err := json.Unmarshal(adapters.Body(resp), &a); err != nil || a.AccessToken == "" {
		return "", &storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "IAM_TOKEN", HTTPStatus: resp.StatusCode,
			Message: "IAM answered without an access token"}
	}
	life := time.Duration(a.ExpiresIn) * time.Second
	if life <= 0 {
		life = time.Minute
	}
	// Stop using a token a tenth of its life (at most a minute) before it
	// expires, so no call starts with a token about to die.
	t.token, t.refresh = a.AccessToken, t.now().Add(life-min(life/10, time.Minute))
	return t.token, nil
}

// drop forgets a token the platform refused, unless another caller already
// replaced it.
func (t *tokens) drop(ctx context.Context, token string) {
	select {
	case t.lock <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-t.lock }()
	if t.token == token {
		t.token = ""
	}
}

func basic(id, secret string) string {
	// RFC 6749 §2.3.1: form-encode each part before joining them.
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

func pathJoin(base string, parts ...string) string {
	return strings.TrimRight(base, "/") + strings.Join(parts, "")
}
