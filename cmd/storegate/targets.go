package main

import (
	"fmt"
	"time"

	"storegate/adapters"
	"storegate/adapters/ags"
	"storegate/adapters/studio"
	"storegate/schemas"
)

// RetryConfig tunes the quick retries inside one call to an HTTP target;
// the dispatcher's backoff owns the durable retries. Zero fields take
// adapters.ClientConfig's defaults.
type RetryConfig struct {
	// Attempts is how many tries one call makes.
	Attempts int `yaml:"attempts"`
	// WaitMin and WaitMax bound the wait between tries; WaitMax is also the
	// longest Retry-After waited inside a call (a longer one goes back to
	// the dispatcher, capped by dispatch.retry_after_max).
	WaitMin Duration `yaml:"wait_min"`
	WaitMax Duration `yaml:"wait_max"`
}

// AGSTargetConfig is a kind: ags target: AccelByte Gaming Services. Zero
// fields take ags.Config's defaults.
type AGSTargetConfig struct {
	// BaseURL is the environment, e.g.
	// https://mystudio.prod.gamingservices.accelbyte.io. Required.
	BaseURL string `yaml:"base_url"`
	// IAMURL is where tokens and user checks go.
	IAMURL string `yaml:"iam_url"`
	// Namespace is the game namespace. Required.
	Namespace string `yaml:"namespace"`
	// ClientID and ClientSecret are an IAM confidential client; give them
	// as ${VAR}. Required.
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// FulfillmentAPI is v3 or v2.
	FulfillmentAPI string `yaml:"fulfillment_api"`
	// UserCheckPath answers 200 for a user and 404 for none; {namespace}
	// and {userId} are filled in.
	UserCheckPath string `yaml:"user_check_path"`
	// Source is the fulfillment source AGS records.
	Source string `yaml:"source"`
	// ItemIDs sends these SKUs by AGS item id; other SKUs go as itemSku.
	ItemIDs map[string]string `yaml:"item_ids"`
}

// HTTPTargetConfig is a kind: http target: a studio's own backend. Zero
// fields take studio.Config's defaults.
type HTTPTargetConfig struct {
	// URL is the backend's base URL. Required.
	URL string `yaml:"url"`
	// Secrets sign every request (Standard Webhooks, whsec_...); several
	// during a rotation. Give them as ${VAR}. Required.
	Secrets []string `yaml:"secrets"`
	// FulfillPath, RevokePath, UserPath, PinCodePath are appended to url.
	FulfillPath string `yaml:"fulfill_path"`
	RevokePath  string `yaml:"revoke_path"`
	UserPath    string `yaml:"user_path"`
	PinCodePath string `yaml:"pin_code_path"`
}

func (t TargetConfig) client() adapters.ClientConfig {
	return adapters.ClientConfig{Timeout: t.Timeout.D(), MaxInFlight: t.MaxInFlight, Attempts: t.Retry.Attempts,
		RetryWaitMin: t.Retry.WaitMin.D(), RetryWaitMax: t.Retry.WaitMax.D()}
}

func (a *AGSTargetConfig) config(t TargetConfig, now func() time.Time) ags.Config {
	return ags.Config{BaseURL: a.BaseURL, IAMURL: a.IAMURL, Namespace: a.Namespace, ClientID: a.ClientID,
		ClientSecret: a.ClientSecret, FulfillmentAPI: a.FulfillmentAPI, UserCheckPath: a.UserCheckPath, Source: a.Source,
		ItemIDs: a.ItemIDs, Client: t.client(), Now: now}
}

func (h *HTTPTargetConfig) config(t TargetConfig, set *schemas.Set, now func() time.Time) studio.Config {
	c := studio.Config{URL: h.URL, Secrets: h.Secrets, FulfillPath: h.FulfillPath, RevokePath: h.RevokePath,
		UserPath: h.UserPath, PinCodePath: h.PinCodePath, Client: t.client(), Now: now}
	if set != nil {
		c.Decode = set.Decode
	}
	return c
}

// validateTarget checks what is particular to each target kind; the caller
// checks the name and the kind itself.
func validateTarget(path string, t TargetConfig) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if t.AGS != nil && t.Kind != "ags" {
		add("%s.ags: only a kind: ags target takes this block", path)
	}
	if t.HTTP != nil && t.Kind != "http" {
		add("%s.http: only a kind: http target takes this block", path)
	}
	remote := t.Kind == "ags" || t.Kind == "http"
	if !remote && (t.Timeout != 0 || t.MaxInFlight != 0 || t.Retry != (RetryConfig{})) {
		add("%s: timeout, max_in_flight and retry apply to ags and http targets only", path)
	}
	if remote && (len(t.Players) > 0 || t.PlayerPattern != "" || len(t.SpendOrder) > 0 || t.Revocation != (RevocationConfig{})) {
		add("%s: players, player_pattern, revocation and spend_order apply to the ledger only", path)
	}
	switch t.Kind {
	case "ags":
		if t.AGS == nil {
			add("%s.ags: required for a kind: ags target", path)
			break
		}
		for _, problem := range t.AGS.config(t, nil).Validate() {
			add("%s.ags.%s", path, problem)
		}
	case "http":
		if t.HTTP == nil {
			add("%s.http: required for a kind: http target", path)
			break
		}
		for _, problem := range t.HTTP.config(t, nil, nil).Validate() {
			add("%s.http.%s", path, problem)
		}
	}
	if t.Timeout < 0 || t.Timeout.D() > time.Minute {
		add("%s.timeout: must be between 0 and 1m", path)
	}
	if t.MaxInFlight < 0 || t.MaxInFlight > 1024 {
		add("%s.max_in_flight: must be between 0 and 1024", path)
	}
	r := t.Retry
	if r.Attempts < 0 || r.Attempts > 10 {
		add("%s.retry.attempts: must be between 0 and 10", path)
	}
	if r.WaitMin < 0 || r.WaitMax < 0 || r.WaitMax.D() > time.Minute {
		add("%s.retry: wait_min and wait_max must be between 0 and 1m", path)
	}
	if r.WaitMin > 0 && r.WaitMax > 0 && r.WaitMax < r.WaitMin {
		add("%s.retry.wait_max: must not be below wait_min", path)
	}
	return p
}

// remoteTarget builds an ags or http target.
func remoteTarget(t TargetConfig, set *schemas.Set, now func() time.Time) (adapters.Target, error) {
	switch t.Kind {
	case "ags":
		return ags.New(t.AGS.config(t, now))
	case "http":
		return studio.New(t.HTTP.config(t, set, now))
	}
	return nil, fmt.Errorf("unknown target kind %q", t.Kind)
}
