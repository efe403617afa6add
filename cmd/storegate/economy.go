package main

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"time"

	"storegate"
	"storegate/adapters/revocation"
	"storegate/ledger"
	"storegate/signing"
	"storegate/store"
)

// GameConfig protects the game-server routes (spend, consume).
type GameConfig struct {
	// Tokens are the accepted bearer tokens, 16+ characters each. Default
	// none: every game-server request is refused.
	Tokens []string `yaml:"tokens"`
}

// RevocationConfig is a ledger target's revocation rules; see ledger.Rules.
type RevocationConfig struct {
	// Currency is allow_negative (default), fail_if_negative or custom.
	Currency string `yaml:"currency"`
	// Durable is revoke (default) or custom.
	Durable string `yaml:"durable"`
	// Consumable is revoke_unused (default) or custom.
	Consumable string `yaml:"consumable"`
	// Custom is the revocation service of the custom strategy: exactly one
	// of grpc and http, required when a strategy is custom.
	Custom CustomRevocationConfig `yaml:"custom"`
}

// CustomRevocationConfig names the external revocation service.
type CustomRevocationConfig struct {
	// Namespace is sent in every request. Default storegate.
	Namespace string            `yaml:"namespace"`
	GRPC      *CustomGRPCConfig `yaml:"grpc"`
	HTTP      *CustomHTTPConfig `yaml:"http"`
}

// CustomGRPCConfig is an AGS revocation plugin over gRPC.
type CustomGRPCConfig struct {
	// Address is host:port. Required.
	Address string `yaml:"address"`
	// TLS dials with TLS. Default false (plaintext).
	TLS bool `yaml:"tls"`
	// Token is sent as a bearer token in the authorization metadata.
	// Optional.
	Token string `yaml:"token"`
	// Timeout bounds one call. Default 2s.
	Timeout Duration `yaml:"timeout"`
}

// CustomHTTPConfig is a revocation service over HTTP JSON.
type CustomHTTPConfig struct {
	// URL is http:// or https://. Required.
	URL string `yaml:"url"`
	// Secrets sign requests with Standard Webhooks (whsec_...). Required.
	Secrets []string `yaml:"secrets"`
	// Timeout bounds one call. Default 2s.
	Timeout Duration `yaml:"timeout"`
}

func (g GameConfig) validate() []string {
	var p []string
	for i, t := range g.Tokens {
		if len(t) < 16 {
			p = append(p, fmt.Sprintf("game.tokens[%d]: a token needs at least 16 characters", i))
		}
	}
	return p
}

// validateLedger checks a ledger target's economy settings.
func (t TargetConfig) validateLedger(path string) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(path+"."+format, args...)) }
	r := t.Revocation
	if !slices.Contains([]string{"", ledger.CurrencyAllowNegative, ledger.CurrencyFailIfNegative, ledger.StrategyCustom}, r.Currency) {
		add("revocation.currency: %q is not allow_negative, fail_if_negative or custom", r.Currency)
	}
	if !slices.Contains([]string{"", ledger.DurableRevoke, ledger.StrategyCustom}, r.Durable) {
		add("revocation.durable: %q is not revoke or custom", r.Durable)
	}
	if !slices.Contains([]string{"", ledger.ConsumableRevokeUnused, ledger.StrategyCustom}, r.Consumable) {
		add("revocation.consumable: %q is not revoke_unused or custom", r.Consumable)
	}
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

// newLedger builds a ledger target, returning its custom revocation client
// (to close with the gateway) even when it fails.
// tables are the schemas kept in the store beside its own. The ledger's are
// applied whether or not a ledger target is configured, so that adding one
// later needs no migration step of its own.
func tables() []store.Migrations {
	return []store.Migrations{ledger.Migrations()}
}

func newLedger(db *store.DB, t TargetConfig) (*ledger.Ledger, io.Closer, error) {
	cfg, closer, err := t.ledgerConfig()
	if err != nil {
		return nil, closer, err
	}
	l, err := ledger.New(db, cfg)
	return l, closer, err
}

// ledgerConfig builds a ledger target's ledger.Config, with its custom
// revocation client (returned to be closed with the gateway) when it has one.
func (t TargetConfig) ledgerConfig() (ledger.Config, io.Closer, error) {
	cfg := ledger.Config{Players: t.Players, PlayerPattern: t.PlayerPattern, Revocation: ledger.Rules{
		Currency: t.Revocation.Currency, Durable: t.Revocation.Durable, Consumable: t.Revocation.Consumable,
		Namespace: t.Revocation.Custom.Namespace}}
	for _, name := range t.SpendOrder {
		p, err := storegate.ParsePlatform(name)
		if err != nil {
			return cfg, nil, err
		}
		cfg.SpendOrder = append(cfg.SpendOrder, p)
	}
	var closer io.Closer
	switch c := t.Revocation.Custom; {
	case c.GRPC != nil:
		g, err := revocation.NewGRPC(revocation.GRPCConfig{Address: c.GRPC.Address, TLS: c.GRPC.TLS, Token: c.GRPC.Token,
			Timeout: time.Duration(c.GRPC.Timeout)})
		if err != nil {
			return cfg, nil, err
		}
		cfg.Revocation.Custom, closer = g, g
	case c.HTTP != nil:
		h, err := revocation.NewHTTP(revocation.HTTPConfig{URL: c.HTTP.URL, Secrets: c.HTTP.Secrets, Timeout: time.Duration(c.HTTP.Timeout)})
		if err != nil {
			return cfg, nil, err
		}
		cfg.Revocation.Custom = h
	}
	return cfg, closer, nil
}
