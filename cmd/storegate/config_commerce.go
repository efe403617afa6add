package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"storegate/mapping"
	"storegate/schemas"
	"storegate/signing"
)

// PartnerConfig is sources[].partner: a distribution partner's settings.
type PartnerConfig struct {
	// Auth is how the partner proves itself besides calling from its
	// registered addresses (allow_ips, required): standard (Standard Webhooks
	// signatures made with the source's secrets; the default) or basic (HTTP
	// Basic, user = the source's name, password = one of its secrets).
	Auth string `yaml:"auth"`
	// TokenTTL is a user token's lifetime; zero leaves it to
	// webhooks.PartnerSource.TokenTTL's default.
	TokenTTL Duration `yaml:"token_ttl"`
	// Currencies the partner sells in (ISO 4217 codes, or virtual
	// currencies the catalog grants, paid from the player's wallet).
	// Default: every currency the catalog's or the partner's prices name.
	Currencies []string `yaml:"currencies"`
	// Prices are the partner's own prices, SKU -> currency -> minor units
	// (199 = 1.99 USD), or whole units of a virtual currency (500
	// CRYSTALS); a SKU without one uses the catalog's. Optional.
	Prices map[string]map[string]int64 `yaml:"prices"`
	// Discounts are percentages off, by SKU, or "*" for every SKU without
	// its own entry. Optional.
	Discounts map[string]int64 `yaml:"discounts"`
	// Taxes are added on top of the discounted price of orders and carts.
	// Default: none.
	Taxes PartnerTaxesConfig `yaml:"taxes"`
	// Bonuses add free items to the orders and carts that qualify. Optional.
	Bonuses []PartnerBonusConfig `yaml:"bonuses"`
}

// PartnerTaxesConfig is sources[].partner.taxes: tax rates in percent
// ("19", "8.875"), applied on top of the discounted amount.
type PartnerTaxesConfig struct {
	// Countries are the rates by the user's country (ISO 3166-1 alpha-2,
	// users/token's user.country).
	Countries map[string]Percent `yaml:"countries"`
	// Currencies are the rates by the order's currency (ISO 4217), for a
	// user whose country is not given or has no rate here. An order in a
	// virtual currency is taxed only at that currency's rate here, never a
	// country's: none unless listed.
	Currencies map[string]Percent `yaml:"currencies"`
}

// PartnerBonusConfig is one of sources[].partner.bonuses: a free item for
// the orders that meet every condition it sets (at least one).
type PartnerBonusConfig struct {
	// SKU is the catalog SKU given. Required.
	SKU string `yaml:"sku"`
	// Quantity given. Default 1.
	Quantity int64 `yaml:"quantity"`
	// MinAmount: the order's discounted amount before tax reaches it, in
	// minor units by currency ({USD: 1500}); an order in a currency not
	// listed does not qualify.
	MinAmount map[string]int64 `yaml:"min_amount"`
	// WithSKU: the order holds this catalog SKU.
	WithSKU string `yaml:"with_sku"`
}

// Percent is a percentage written as a decimal number (19, 8.875), read
// exactly as millionths of the amount: never as a float.
type Percent int64

// UnmarshalYAML reads a percentage. Its error is a *yaml.TypeError, so that
// decoding goes on and every other problem is reported too.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	v, ok := mapping.ParsePercent(n.Value)
	if !ok || n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("%q is not a percentage like 19 or 8.875 (at most four decimals)", n.Value)}}
	}
	*p = Percent(v)
	return nil
}

func (p Percent) MarshalYAML() (any, error) { return mapping.FormatPercent(int64(p)), nil }

// pricing is the partner's price list as mapping reads it.
func (pc *PartnerConfig) pricing() mapping.PartnerPricing {
	p := mapping.PartnerPricing{Currencies: pc.Currencies, Prices: pc.Prices, Discounts: pc.Discounts,
		Taxes: mapping.PartnerTaxes{Countries: rates(pc.Taxes.Countries), Currencies: rates(pc.Taxes.Currencies)}}
	for _, b := range pc.Bonuses {
		p.Bonuses = append(p.Bonuses, mapping.PartnerBonus{SKU: b.SKU, Quantity: b.Quantity, MinAmount: b.MinAmount, WithSKU: b.WithSKU})
	}
	return p
}

func rates(in map[string]Percent) map[string]int64 {
	out := make(map[string]int64, len(in))
	for k, v := range in {
		out[k] = int64(v)
	}
	return out
}

// StoresConfig is sources[].stores: a studio's store proxy.
type StoresConfig struct {
	// Platforms the source may send events for. Default: all of steam,
	// epic, xbox, playstation, twitch.
	Platforms []string `yaml:"platforms"`
}

// FulfillOrdersConfig is fulfill_orders: POST /v1/players/{id}/fulfill-orders.
// Off unless source is set.
type FulfillOrdersConfig struct {
	// Source is a stores source: pulled orders share its transaction ids, so
	// an order both proxied and pulled is granted once, and go to its target.
	Source string `yaml:"source"`
	// TokenKeys verify players' HS256 JWTs (any key; the first for
	// rotation order). Required, 32+ characters each.
	TokenKeys []string `yaml:"token_keys"`
	// TokenIssuer and TokenAudience, when set, must be the token's iss and
	// one of its aud. Default: not checked.
	TokenIssuer   string `yaml:"token_issuer"`
	TokenAudience string `yaml:"token_audience"`
	// Overlap is taken off the player's cursor when asking a platform for
	// changes, against clock skew. Default 5m.
	Overlap Duration `yaml:"overlap"`
	// Wait is how long an answer waits for its grants and claw-backs to be
	// applied (so it can say "granted"); 0s answers at once. Default 2s.
	Wait *Duration `yaml:"wait"`
	// Timeout bounds one connector call. Default 10s: the YAML layer's own,
	// since it goes to both webhooks.FulfillOrders.Deadline and each
	// connector's Timeout, and a connector's own default is shorter.
	Timeout Duration `yaml:"timeout"`
	// Connectors, one per platform.
	Connectors []ConnectorConfig `yaml:"connectors"`
}

// ConnectorConfig is one platform's order connector.
type ConnectorConfig struct {
	// Platform is steam, epic, xbox, playstation or twitch. Required.
	Platform string `yaml:"platform"`
	// Kind is http (the studio's endpoint). Default http.
	Kind string `yaml:"kind"`
	// URL receives the signed POST. Required.
	URL string `yaml:"url"`
	// Secrets sign the requests (Standard Webhooks). Default: the source's
	// secrets.
	Secrets []string `yaml:"secrets"`
}

func (c *Config) setCommerceDefaults() {
	for i := range c.Sources {
		s := &c.Sources[i]
		switch s.Kind {
		case "partner":
			if s.Partner == nil {
				s.Partner = &PartnerConfig{}
			}
			if s.Partner.Auth == "" {
				s.Partner.Auth = "standard"
			}
			for j := range s.Partner.Bonuses {
				if s.Partner.Bonuses[j].Quantity == 0 {
					s.Partner.Bonuses[j].Quantity = 1
				}
			}
		case "stores":
			if s.Stores == nil {
				s.Stores = &StoresConfig{}
			}
			if len(s.Stores.Platforms) == 0 {
				s.Stores.Platforms = mapping.StorePlatformNames()
			}
		}
	}
	f := &c.FulfillOrders
	if f.Overlap == 0 {
		f.Overlap = Duration(5 * time.Minute)
	}
	if f.Wait == nil {
		w := Duration(2 * time.Second)
		f.Wait = &w
	}
	if f.Timeout == 0 {
		f.Timeout = Duration(10 * time.Second)
	}
	for i := range f.Connectors {
		if f.Connectors[i].Kind == "" {
			f.Connectors[i].Kind = "http"
		}
	}
}

// validateLinkParameters checks link_parameters against the answer they go
// into, so that a linking webhook never fails on them at run time.
func validateLinkParameters(path string, params map[string]any) []string {
	if len(params) == 0 {
		return nil
	}
	set, err := schemas.Load()
	if err != nil {
		return []string{err.Error()}
	}
	doc, err := json.Marshal(map[string]any{"id": "check", "custom_parameters": params})
	if err != nil {
		return []string{fmt.Sprintf("%s.link_parameters: not representable as JSON: %v", path, err)}
	}
	if err := set.Validate("answers/xsolla_transaction_info", doc); err != nil {
		return []string{fmt.Sprintf("%s.link_parameters: Xsolla takes at most 200 custom_parameters, as a JSON object: %s",
			path, err)}
	}
	return nil
}

// validateCommerce checks the partner and stores blocks of source i.
func (c *Config) validateCommerce(path string, s SourceConfig) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if s.Partner != nil && s.Kind != "partner" {
		add("%s.partner: only a partner source has a partner block", path)
	}
	if s.Stores != nil && s.Kind != "stores" {
		add("%s.stores: only a stores source has a stores block", path)
	}
	if s.Kind != "partner" && s.Kind != "stores" {
		return append(p, validateLinkParameters(path, s.LinkParameters)...)
	}
	if s.GrantOn != "" {
		add("%s.grant_on: only for an xsolla source", path)
	}
	if len(s.LinkParameters) > 0 {
		add("%s.link_parameters: only for an xsolla source", path)
	}
	standard := s.Kind == "stores" || s.Partner.Auth == "standard"
	if standard && len(s.Secrets) > 0 {
		if _, err := signing.NewStandard(s.Secrets, signing.StandardConfig{}); err != nil {
			add("%s.secrets: Standard Webhooks secrets must be whsec_<base64>: %v", path, err)
		}
	}
	if s.Kind == "stores" {
		for j, pl := range s.Stores.Platforms {
			if _, ok := mapping.StorePlatform(pl); !ok {
				add("%s.stores.platforms[%d]: %q is not steam, epic, xbox, playstation or twitch", path, j, pl)
			}
		}
		return p
	}
	pc := s.Partner
	switch pc.Auth {
	case "standard":
	case "basic":
		for j, sec := range s.Secrets {
			if sec != "" && len(sec) < 16 {
				add("%s.secrets[%d]: an HTTP Basic key needs at least 16 characters", path, j)
			}
		}
	default:
		add("%s.partner.auth: %q is not standard or basic", path, pc.Auth)
	}
	// The registered server addresses are required (the DDH model): a
	// partner with none, or open to any address, is a mistake.
	if len(s.AllowIPs) == 0 {
		add("%s.allow_ips: required for a partner: its registered server addresses", path)
	}
	if slices.Contains(s.AllowIPs, "any") {
		add("%s.allow_ips: a partner must be limited to its registered server addresses, not any", path)
	}
	if pc.TokenTTL != 0 && (pc.TokenTTL.D() < time.Minute || pc.TokenTTL.D() > 24*time.Hour) {
		add("%s.partner.token_ttl: must be between 1m and 24h", path)
	}
	// A price's currency is an ISO 4217 code or a virtual currency the
	// catalog grants, never one named like the other (mapping.Catalog.
	// PriceCurrency): its amounts would be read in the wrong units.
	virtual := map[string]bool{}
	skus := map[string]bool{}
	for _, e := range c.Catalog {
		skus[e.SKU] = true
		if e.Currency != "" {
			virtual[e.Currency] = true
		}
	}
	priceCurrency := func(cur string) bool { return mapping.IsCurrencyCode(cur) != virtual[cur] }
	sellsVirtual := ""
	for j, cur := range pc.Currencies {
		if !priceCurrency(cur) {
			add("%s.partner.currencies[%d]: %q is neither an ISO 4217 code nor a currency the catalog grants", path, j, cur)
		}
	}
	sells := func(cur string) {
		if virtual[cur] && (sellsVirtual == "" || cur < sellsVirtual) && (len(pc.Currencies) == 0 || slices.Contains(pc.Currencies, cur)) {
			sellsVirtual = cur
		}
	}
	for _, e := range c.Catalog {
		for cur := range e.Prices {
			sells(cur)
		}
	}
	for sku, prices := range pc.Prices {
		if !skus[sku] {
			add("%s.partner.prices.%s: not a catalog sku", path, sku)
		}
		for cur, amount := range prices {
			sells(cur)
			if !priceCurrency(cur) || amount <= 0 {
				add("%s.partner.prices.%s.%s: want a positive amount in minor units under an ISO 4217 code, or whole units of a currency the catalog grants", path, sku, cur)
			}
		}
	}
	// Only the embedded ledger keeps wallets: an order in a virtual
	// currency sent anywhere else could never be paid.
	if sellsVirtual != "" {
		for _, t := range c.Targets {
			if t.Name == s.Target && t.Kind != "ledger" {
				add("%s.partner: it sells in %s, which only a ledger target can take from a wallet (target %s is %s); list partner.currencies without it",
					path, sellsVirtual, t.Name, t.Kind)
			}
		}
	}
	for sku, pct := range pc.Discounts {
		if sku != "*" && !skus[sku] {
			add("%s.partner.discounts.%s: not a catalog sku (or \"*\")", path, sku)
		}
		if pct < 0 || pct > 100 {
			add("%s.partner.discounts.%s: %d is not a percentage 0..100", path, sku, pct)
		}
	}
	for country, rate := range pc.Taxes.Countries {
		if !isCountryCode(country) {
			add("%s.partner.taxes.countries.%s: not an ISO 3166-1 alpha-2 code like DE", path, country)
		}
		if rate > 1_000_000 {
			add("%s.partner.taxes.countries.%s: %s is not a percentage 0..100", path, country, mapping.FormatPercent(int64(rate)))
		}
	}
	for cur, rate := range pc.Taxes.Currencies {
		if !priceCurrency(cur) {
			add("%s.partner.taxes.currencies.%s: neither an ISO 4217 code nor a currency the catalog grants", path, cur)
		}
		if rate > 1_000_000 {
			add("%s.partner.taxes.currencies.%s: %s is not a percentage 0..100", path, cur, mapping.FormatPercent(int64(rate)))
		}
	}
	for j, b := range pc.Bonuses {
		at := fmt.Sprintf("%s.partner.bonuses[%d]", path, j)
		if !skus[b.SKU] {
			add("%s.sku: %q is not a catalog sku", at, b.SKU)
		}
		if b.Quantity < 1 || b.Quantity > mapping.MaxQuantity {
			add("%s.quantity: %d outside 1..%d", at, b.Quantity, mapping.MaxQuantity)
		}
		if b.MinAmount == nil && b.WithSKU == "" {
			add("%s: set min_amount, with_sku or both: a bonus for every order is a price change", at)
		}
		for cur, amount := range b.MinAmount {
			if !priceCurrency(cur) || amount <= 0 {
				add("%s.min_amount.%s: want a positive amount in minor units under an ISO 4217 code, or whole units of a currency the catalog grants", at, cur)
			}
		}
		if b.WithSKU != "" && !skus[b.WithSKU] {
			add("%s.with_sku: %q is not a catalog sku", at, b.WithSKU)
		}
	}
	return p
}

// isCountryCode reports whether s looks like an ISO 3166-1 alpha-2 code.
func isCountryCode(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

func (c *Config) validateFulfillOrders() []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	f := c.FulfillOrders
	if f.Source == "" {
		if len(f.Connectors) > 0 || len(f.TokenKeys) > 0 {
			add("fulfill_orders.source: required to turn Fulfill Orders on (a stores source)")
		}
		return p
	}
	var src *SourceConfig
	for i := range c.Sources {
		if c.Sources[i].Name == f.Source {
			src = &c.Sources[i]
		}
	}
	if src == nil || src.Kind != "stores" {
		add("fulfill_orders.source: %q is not a configured stores source", f.Source)
	}
	if len(f.TokenKeys) == 0 {
		add("fulfill_orders.token_keys: at least one key is required")
	}
	for i, k := range f.TokenKeys {
		if len(k) < 32 {
			add("fulfill_orders.token_keys[%d]: an HS256 key needs at least 32 characters", i)
		}
	}
	if f.Overlap < 0 || f.Overlap.D() > 24*time.Hour {
		add("fulfill_orders.overlap: must be between 0 and 24h")
	}
	if f.Wait.D() < 0 || f.Wait.D() > 30*time.Second {
		add("fulfill_orders.wait: must be between 0 and 30s")
	}
	if f.Timeout.D() <= 0 || f.Timeout.D() > time.Minute {
		add("fulfill_orders.timeout: must be between 0 and 1m")
	}
	if len(f.Connectors) == 0 {
		add("fulfill_orders.connectors: at least one connector is required")
	}
	seen := map[string]bool{}
	for i, con := range f.Connectors {
		path := fmt.Sprintf("fulfill_orders.connectors[%d]", i)
		if _, ok := mapping.StorePlatform(con.Platform); !ok {
			add("%s.platform: %q is not steam, epic, xbox, playstation or twitch", path, con.Platform)
		} else if seen[con.Platform] {
			add("%s.platform: %s has two connectors", path, con.Platform)
		} else if src != nil && src.Stores != nil && !slices.Contains(src.Stores.Platforms, con.Platform) {
			add("%s.platform: %s is not among %s's platforms", path, con.Platform, f.Source)
		}
		seen[con.Platform] = true
		if con.Kind != "http" {
			add("%s.kind: %q is not a known connector kind (http)", path, con.Kind)
		}
		if u, err := url.Parse(con.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("%s.url: want an http:// or https:// URL", path)
		}
		if len(con.Secrets) > 0 {
			if _, err := signing.NewStandard(con.Secrets, signing.StandardConfig{}); err != nil {
				add("%s.secrets: Standard Webhooks secrets must be whsec_<base64>: %v", path, err)
			}
		}
	}
	return p
}

// connectorSecrets are the secrets a connector signs with.
func (c *Config) connectorSecrets(con ConnectorConfig) []string {
	if len(con.Secrets) > 0 {
		return con.Secrets
	}
	for _, s := range c.Sources {
		if s.Name == c.FulfillOrders.Source {
			return s.Secrets
		}
	}
	return nil
}
