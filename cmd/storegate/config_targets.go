package main

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"storegate"
	"storegate/adapters"
	"storegate/adapters/ags"
	"storegate/adapters/revocation"
	"storegate/adapters/studio"
	"storegate/ledger"
	"storegate/schemas"
	"storegate/signing"
)

// TargetConfig is one downstream backend.
type TargetConfig struct {
	// Name is how sources refer to it. Required.
	Name string `yaml:"name"`
	// Kind is ledger (the embedded economy), ags (AccelByte Gaming
	// Services) or http (a studio's own backend).
	Kind string `yaml:"kind"`
	// Players (ledger) exist before they are granted anything.
	Players []string `yaml:"players"`
	// PlayerPattern (ledger) is a regular expression; matching ids exist.
	PlayerPattern string `yaml:"player_pattern"`
	// Breaker tunes the target's circuit breaker.
	Breaker BreakerConfig `yaml:"breaker"`
	// Revocation (ledger) is the revocation rules.
	Revocation RevocationConfig `yaml:"revocation"`
	// SpendOrder (ledger) is the order a spend across platforms drains
	// balances; platforms left out follow in ledger.DefaultSpendOrder.
	SpendOrder []string `yaml:"spend_order"`
	// Timeout bounds one HTTP exchange (ags, http):
	// adapters.ClientConfig.Timeout.
	Timeout Duration `yaml:"timeout"`
	// MaxInFlight caps calls to the target at once (ags, http):
	// adapters.ClientConfig.MaxInFlight.
	MaxInFlight int `yaml:"max_in_flight"`
	// Retry tunes the quick retries inside one call (ags, http).
	Retry RetryConfig `yaml:"retry"`
	// AGS configures a kind: ags target; HTTP a kind: http target.
	AGS  *AGSTargetConfig  `yaml:"ags"`
	HTTP *HTTPTargetConfig `yaml:"http"`
}

// BreakerConfig tunes the breakers of a target's remote dependencies (AGS:
// the Platform API and IAM; http: the backend; ledger: its custom
// revocation service): the fields of adapters.BreakerConfig, whose defaults
// apply to the zero ones.
type BreakerConfig struct {
	Failures   int      `yaml:"failures"` // consecutive transient failures that open it
	ProbeAfter Duration `yaml:"probe_after"`
	OpenFor    Duration `yaml:"open_for"`
	Probes     int      `yaml:"probes"` // calls let through when half-open
}

func (b BreakerConfig) config() adapters.BreakerConfig {
	return adapters.BreakerConfig{Failures: uint32(b.Failures), ProbeAfter: b.ProbeAfter.D(), OpenFor: b.OpenFor.D(), Probes: uint32(b.Probes)}
}

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
	// RevokeAPI is v2 or v3 of Revoke Fulfillment.
	RevokeAPI string `yaml:"revoke_api"`
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
		ClientSecret: a.ClientSecret, FulfillmentAPI: a.FulfillmentAPI, RevokeAPI: a.RevokeAPI, UserCheckPath: a.UserCheckPath, Source: a.Source,
		ItemIDs: a.ItemIDs, Client: t.client(), Breaker: t.Breaker.config(), Name: t.Name, Now: now}
}

func (h *HTTPTargetConfig) config(t TargetConfig, set *schemas.Set, now func() time.Time) studio.Config {
	c := studio.Config{URL: h.URL, Secrets: h.Secrets, FulfillPath: h.FulfillPath, RevokePath: h.RevokePath,
		UserPath: h.UserPath, PinCodePath: h.PinCodePath, Client: t.client(), Breaker: t.Breaker.config(), Name: t.Name, Now: now}
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

// RevocationConfig is a ledger target's revocation rules: ledger.Rules,
// whose defaults apply to the zero fields.
type RevocationConfig struct {
	// Currency is allow_negative, fail_if_negative, custom or none.
	Currency string `yaml:"currency"`
	// Durable is revoke, custom or none.
	Durable string `yaml:"durable"`
	// Consumable is revoke_unused, custom or none.
	Consumable string `yaml:"consumable"`
	// Custom is the revocation service of the custom strategy: exactly one
	// of grpc and http, required when a strategy is custom.
	Custom CustomRevocationConfig `yaml:"custom"`
}

// SourceRevocationConfig is one source's revocation overrides: a
// ledger.SourceRules, where an empty field leaves the kind to the catalog
// item's action and the target's rule.
type SourceRevocationConfig struct {
	// Currency is allow_negative, fail_if_negative, custom or none.
	Currency string `yaml:"currency"`
	// Durable is revoke, custom or none.
	Durable string `yaml:"durable"`
	// Consumable is revoke_unused, custom or none.
	Consumable string `yaml:"consumable"`
}

func (r SourceRevocationConfig) rules() ledger.SourceRules {
	return ledger.SourceRules{Currency: r.Currency, Durable: r.Durable, Consumable: r.Consumable}
}

// validate checks a source's overrides; kind is its target's kind.
func (r SourceRevocationConfig) validate(path string, kind string) []string {
	if r == (SourceRevocationConfig{}) {
		return nil
	}
	var p []string
	if kind != "" && kind != "ledger" {
		p = append(p, path+".revocation: applies to sources whose target is a ledger (AGS and studio backends apply their own rules)")
	}
	return append(p, actionProblems(path+".revocation", r.Currency, r.Durable, r.Consumable)...)
}

// actionProblems checks one revocation action per kind; empty ones are
// left to the defaults.
func actionProblems(path, currency, durable, consumable string) []string {
	var p []string
	for _, f := range []struct{ key, kind, value string }{
		{"currency", storegate.RevocationCurrency, currency},
		{"durable", storegate.RevocationDurable, durable},
		{"consumable", storegate.RevocationConsumable, consumable},
	} {
		if actions := storegate.RevocationActions(f.kind); f.value != "" && !slices.Contains(actions, f.value) {
			p = append(p, fmt.Sprintf("%s.%s: %q is not %s", path, f.key, f.value, strings.Join(actions, ", ")))
		}
	}
	return p
}

// validateCustomRevocation refuses a custom action, named by a source or a
// catalog item, without a ledger's custom revocation service to ask.
func (c *Config) validateCustomRevocation() []string {
	var p []string
	var ledgerTarget *TargetConfig
	for i := range c.Targets {
		if c.Targets[i].Kind == "ledger" {
			ledgerTarget = &c.Targets[i]
		}
	}
	if ledgerTarget == nil || ledgerTarget.Revocation.Custom.GRPC != nil || ledgerTarget.Revocation.Custom.HTTP != nil {
		return nil
	}
	for i, s := range c.Sources {
		r := s.Revocation
		if s.Target == ledgerTarget.Name && slices.Contains([]string{r.Currency, r.Durable, r.Consumable}, ledger.StrategyCustom) {
			p = append(p, fmt.Sprintf("sources[%d].revocation: a custom action needs the ledger target's revocation.custom.grpc or .http", i))
		}
	}
	for i, e := range c.Catalog {
		if e.Revocation == ledger.StrategyCustom {
			p = append(p, fmt.Sprintf("catalog[%d] (%s).revocation: custom needs the ledger target's revocation.custom.grpc or .http", i, e.SKU))
		}
	}
	return p
}

// sourceRules are the revocation overrides of the sources whose target is
// target.
func (c *Config) sourceRules(target string) map[string]ledger.SourceRules {
	out := map[string]ledger.SourceRules{}
	for _, s := range c.Sources {
		if s.Target == target && s.Revocation != (SourceRevocationConfig{}) {
			out[s.Name] = s.Revocation.rules()
		}
	}
	return out
}

// CustomRevocationConfig names the external revocation service.
type CustomRevocationConfig struct {
	// Namespace is sent in every request: ledger.Rules.Namespace.
	Namespace string            `yaml:"namespace"`
	GRPC      *CustomGRPCConfig `yaml:"grpc"`
	HTTP      *CustomHTTPConfig `yaml:"http"`
}

// CustomGRPCConfig is an AGS revocation plugin over gRPC: the fields of
// revocation.GRPCConfig, whose defaults apply to the zero ones.
type CustomGRPCConfig struct {
	// Address is host:port. Required.
	Address string `yaml:"address"`
	// TLS dials with TLS; without it, plaintext.
	TLS bool `yaml:"tls"`
	// Token is sent as a bearer token in the authorization metadata.
	// Optional.
	Token string `yaml:"token"`
	// Timeout bounds one call.
	Timeout Duration `yaml:"timeout"`
}

// CustomHTTPConfig is a revocation service over HTTP JSON: the fields of
// revocation.HTTPConfig, whose defaults apply to the zero ones.
type CustomHTTPConfig struct {
	// URL is http:// or https://. Required.
	URL string `yaml:"url"`
	// Secrets sign requests with Standard Webhooks (whsec_...). Required.
	Secrets []string `yaml:"secrets"`
	// Timeout bounds one call.
	Timeout Duration `yaml:"timeout"`
}

func (g *CustomGRPCConfig) config() revocation.GRPCConfig {
	return revocation.GRPCConfig{Address: g.Address, TLS: g.TLS, Token: g.Token, Timeout: g.Timeout.D()}
}

func (h *CustomHTTPConfig) config() revocation.HTTPConfig {
	return revocation.HTTPConfig{URL: h.URL, Secrets: h.Secrets, Timeout: h.Timeout.D()}
}

// validateLedger checks a ledger target's economy settings.
func (t TargetConfig) validateLedger(path string) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(path+"."+format, args...)) }
	r := t.Revocation
	p = append(p, actionProblems(path+".revocation", r.Currency, r.Durable, r.Consumable)...)
	c := r.Custom
	custom := r.Currency == ledger.StrategyCustom || r.Durable == ledger.StrategyCustom || r.Consumable == ledger.StrategyCustom
	switch {
	case c.GRPC != nil && c.HTTP != nil:
		add("revocation.custom: set grpc or http, not both")
	case custom && c.GRPC == nil && c.HTTP == nil:
		add("revocation.custom: a custom strategy needs custom.grpc or custom.http")
	}
	if g := c.GRPC; g != nil {
		if _, _, err := net.SplitHostPort(g.Address); err != nil {
			add("revocation.custom.grpc.address: %q is not host:port", g.Address)
		}
		if g.Timeout < 0 {
			add("revocation.custom.grpc.timeout: must not be negative")
		}
	}
	if h := c.HTTP; h != nil {
		if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("revocation.custom.http.url: want an http:// or https:// URL")
		}
		if _, err := signing.StandardHeaders(h.Secrets, "probe", 0, nil); err != nil {
			add("revocation.custom.http.secrets: at least one whsec_ base64 secret is required")
		}
		if h.Timeout < 0 {
			add("revocation.custom.http.timeout: must not be negative")
		}
	}
	seen := map[storegate.Platform]bool{}
	for i, name := range t.SpendOrder {
		pl, err := storegate.ParsePlatform(name)
		switch {
		case err != nil:
			add("spend_order[%d]: %v", i, err)
		case seen[pl]:
			add("spend_order[%d]: %s is listed twice", i, pl)
		}
		seen[pl] = true
	}
	return p
}
