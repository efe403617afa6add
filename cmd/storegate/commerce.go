package main

import (
	"fmt"
	"time"

	"storegate/adapters"
	"storegate/adapters/connectors"
	"storegate/api"
	"storegate/signing"
	"storegate/webhooks"
)

// commerce builds the partner and store-proxy sources and Fulfill Orders
// from a validated config.
func commerce(cfg *Config, now func() time.Time, onBreaker adapters.BreakerObserver) ([]webhooks.PartnerSource, []webhooks.StoresSource, *api.FulfillOrders, error) {
	var partners []webhooks.PartnerSource
	var stores []webhooks.StoresSource
	for _, s := range cfg.Sources {
		allow, err := allowList(s.AllowIPs)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("source %s: %w", s.Name, err)
		}
		base := webhooks.Source{Name: s.Name, Target: s.Target, AllowIPs: allow, BodyLimit: s.BodyBytes}
		switch s.Kind {
		case "partner":
			pc := s.Partner
			base.Receipts = cfg.Receipts.target()
			src := webhooks.PartnerSource{Source: base,
				TokenTTL: pc.TokenTTL.D(), Pricing: pc.pricing()}
			for _, sec := range s.Secrets {
				src.TokenKeys = append(src.TokenKeys, webhooks.PartnerTokenKey(sec))
			}
			if pc.Auth == "basic" {
				src.BasicKeys = s.Secrets
			} else {
				v, err := signing.NewStandard(s.Secrets, signing.StandardConfig{Now: now})
				if err != nil {
					return nil, nil, nil, fmt.Errorf("source %s: %w", s.Name, err)
				}
				src.Verifier = v
			}
			partners = append(partners, src)
		case "stores":
			v, err := signing.NewStandard(s.Secrets, signing.StandardConfig{Now: now})
			if err != nil {
				return nil, nil, nil, fmt.Errorf("source %s: %w", s.Name, err)
			}
			base.Verifier = v
			stores = append(stores, webhooks.StoresSource{Source: base, Platforms: s.Stores.Platforms})
		}
	}
	f := cfg.FulfillOrders
	if f.Source == "" {
		return partners, stores, nil, nil
	}
	keys := make([][]byte, len(f.TokenKeys))
	for i, k := range f.TokenKeys {
		keys[i] = []byte(k)
	}
	tokens, err := signing.NewJWT(keys, signing.JWTConfig{Issuer: f.TokenIssuer, Audience: f.TokenAudience, Now: now})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("fulfill_orders.token_keys: %w", err)
	}
	fo := &api.FulfillOrders{Source: f.Source, Tokens: tokens, Connectors: map[string]api.OrderConnector{},
		Overlap: f.Overlap.D(), Wait: f.Wait.D(), Deadline: f.Timeout.D()}
	for _, s := range cfg.Sources {
		if s.Name == f.Source {
			fo.Target = s.Target
		}
	}
	for _, con := range f.Connectors {
		b := adapters.NewBreaker("connector."+con.Platform, adapters.BreakerConfig{}, now, onBreaker)
		c, err := connectors.NewHTTP(connectors.HTTPConfig{URL: con.URL, Secrets: cfg.connectorSecrets(con), Timeout: f.Timeout.D(),
			Client: adapters.ClientConfig{Breaker: b}, Now: now})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("fulfill_orders connector %s: %w", con.Platform, err)
		}
		fo.Connectors[con.Platform] = c
	}
	return partners, stores, fo, nil
}
