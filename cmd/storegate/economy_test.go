package main

import (
	"reflect"
	"strings"
	"testing"

	"storegate/ledger"
)

func TestParseConfig_EconomySettings(t *testing.T) {
	vars := env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "s"})
	tests := []struct {
		name, yaml string
		problems   []string // empty: valid
	}{
		{"defaults", ``, nil},
		{"none for every kind", `
    revocation: {currency: none, durable: none, consumable: none}`, nil},
		{"every strategy", `
    revocation: {currency: fail_if_negative, durable: revoke, consumable: revoke_unused}
    spend_order: [epic, Steam]`, nil},
		{"custom over grpc", `
    revocation:
      currency: custom
      custom: {grpc: {address: "127.0.0.1:6565", timeout: 1s, token: t}}`, nil},
		{"custom over http", `
    revocation:
      durable: custom
      custom: {http: {url: "https://studio.example/revoke", secrets: ["whsec_c2VjcmV0"]}}`, nil},
		{"unknown strategies", `
    revocation: {currency: forgive, durable: keep, consumable: revoke}`, []string{
			`targets[0].revocation.currency: "forgive" is not allow_negative, fail_if_negative, custom, none`,
			`targets[0].revocation.durable: "keep" is not revoke, custom, none`,
			`targets[0].revocation.consumable: "revoke" is not revoke_unused, custom, none`}},
		{"custom without a service", `
    revocation: {consumable: custom}`, []string{"targets[0].revocation.custom: a custom strategy needs custom.grpc or custom.http"}},
		{"both services", `
    revocation:
      currency: custom
      custom: {grpc: {address: "h:1"}, http: {url: "http://h", secrets: ["whsec_c2VjcmV0"]}}`, []string{"targets[0].revocation.custom: set grpc or http, not both"}},
		{"bad service settings", `
    revocation:
      currency: custom
      custom: {http: {url: "ftp://h", secrets: ["not base64!"]}}`, []string{
			"targets[0].revocation.custom.http.url: want an http:// or https:// URL",
			"targets[0].revocation.custom.http.secrets: at least one whsec_ base64 secret is required"}},
		{"bad grpc address", `
    revocation:
      currency: custom
      custom: {grpc: {address: "nohost"}}`, []string{`targets[0].revocation.custom.grpc.address: "nohost" is not host:port`}},
		{"bad spend order", `
    spend_order: [Steam, Nintendo, steam]`, []string{
			`targets[0].spend_order[1]: unknown platform "Nintendo"`, "targets[0].spend_order[2]: Steam is listed twice"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := strings.Replace(minimal, "    kind: ledger\n", "    kind: ledger"+tc.yaml+"\n", 1)
			cfg, err := ParseConfig([]byte(raw), vars)
			if len(tc.problems) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := cfg.Targets[0].ledgerConfig(); err != nil {
					t.Fatalf("valid config does not build a ledger: %v", err)
				}
				return
			}
			for _, want := range tc.problems {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}

// A source's revocation overrides and a catalog item's action: their values,
// the ledger they apply to, and the custom service a custom one needs.
func TestParseConfig_RevocationOverrides(t *testing.T) {
	vars := env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "s"})
	const ags = `
  - name: ags
    kind: ags
    ags: {base_url: "https://ags.example", namespace: game, client_id: c, client_secret: s}
`
	tests := []struct {
		name     string
		edit     func(string) string
		problems []string // empty: valid
		sources  map[string]ledger.SourceRules
	}{
		{name: "source override", edit: func(y string) string {
			y = strings.Replace(y, "    target: ledger\n", "    target: ledger\n    revocation: {currency: none, durable: custom}\n", 1)
			return strings.Replace(y, "    kind: ledger\n", "    kind: ledger\n    revocation: {custom: {grpc: {address: \"127.0.0.1:6565\"}}}\n", 1)
		}, sources: map[string]ledger.SourceRules{"xs": {Currency: "none", Durable: "custom"}}},
		{name: "catalog item actions", edit: func(y string) string {
			return y + "  - {sku: gift, type: coin, currency: CRYSTALS, amount: 5, revocation: none}\n" +
				"  - {sku: pack, type: bundle, revocation: none, contents: [{sku: gift}]}\n"
		}, sources: map[string]ledger.SourceRules{}},
		{name: "unknown source values", edit: func(y string) string {
			return strings.Replace(y, "    target: ledger\n", "    target: ledger\n    revocation: {currency: forgive, consumable: revoke}\n", 1)
		}, problems: []string{
			`sources[0].revocation.currency: "forgive" is not allow_negative, fail_if_negative, custom, none`,
			`sources[0].revocation.consumable: "revoke" is not revoke_unused, custom, none`}},
		{name: "custom without a service", edit: func(y string) string {
			return strings.Replace(y, "    target: ledger\n", "    target: ledger\n    revocation: {currency: custom}\n", 1)
		}, problems: []string{"sources[0].revocation: a custom action needs the ledger target's revocation.custom.grpc or .http"}},
		{name: "catalog custom without a service", edit: func(y string) string {
			return y + "  - {sku: sword, type: durable, revocation: custom}\n"
		}, problems: []string{"catalog[1] (sword).revocation: custom needs the ledger target's revocation.custom.grpc or .http"}},
		{name: "catalog action of another kind", edit: func(y string) string {
			return y + "  - {sku: sword, type: durable, revocation: allow_negative}\n  - {sku: pack, type: bundle, revocation: revoke, contents: [{sku: sword}]}\n"
		}, problems: []string{`(sword).revocation: "allow_negative" is not one of revoke, custom, none for type durable`}},
		{name: "bundle action of one kind", edit: func(y string) string {
			return y + "  - {sku: sword, type: durable}\n  - {sku: pack, type: bundle, revocation: revoke, contents: [{sku: sword}]}\n"
		}, problems: []string{`(pack).revocation: "revoke" is not one of custom, none for type bundle`}},
		{name: "source of a remote target", edit: func(y string) string {
			y = strings.Replace(y, "    target: ledger\n", "    target: ags\n    revocation: {currency: none}\n", 1)
			return strings.Replace(y, "targets:\n", "targets:"+ags, 1)
		}, problems: []string{"sources[0].revocation: applies to sources whose target is a ledger"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.edit(minimal)
			cfg, err := ParseConfig([]byte(raw), vars)
			if len(tc.problems) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got := cfg.sourceRules("ledger"); !reflect.DeepEqual(got, tc.sources) {
					t.Errorf("source rules = %v, want %v", got, tc.sources)
				}
				return
			}
			for _, want := range tc.problems {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}

func TestParseConfig_GameTokens(t *testing.T) {
	raw := minimal + "game:\n  tokens: [\"${GAME}\"]\n"
	cfg, err := ParseConfig([]byte(raw), env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "s", "GAME": "game-token-0123456789"}))
	if err != nil || len(cfg.Game.Tokens) != 1 {
		t.Fatalf("cfg = %+v, err %v", cfg, err)
	}
	_, err = ParseConfig([]byte(raw), env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "s", "GAME": "short"}))
	if err == nil || !strings.Contains(err.Error(), "game.tokens[0]: a token needs at least 16 characters") || strings.Contains(err.Error(), "short") {
		t.Fatalf("err = %v, want the short token's path without its value", err)
	}
}
