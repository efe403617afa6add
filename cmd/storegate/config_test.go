package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const minimal = `
admin:
  tokens: ["${ADMIN}"]
sources:
  - name: xs
    kind: xsolla
    secrets: ["${XS_SECRET}"]
    target: ledger
targets:
  - name: ledger
    kind: ledger
catalog:
  - {sku: crystals_100, type: coin, currency: CRYSTALS, amount: 100}
`

func TestParseConfig_DefaultsAndExpansion(t *testing.T) {
	cfg, err := ParseConfig([]byte(minimal), env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "s3cr3t: with yaml chars #"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Sources[0].Secrets[0], "s3cr3t: with yaml chars #"; got != want {
		t.Errorf("secret = %q, want %q (expanded verbatim)", got, want)
	}
	for _, tc := range []struct{ name, got, want string }{
		{"listen", cfg.Listen, "127.0.0.1:8080"},
		{"metrics_listen", cfg.MetricsListen, "127.0.0.1:9464"},
		{"store", cfg.Store.DSN, "sqlite:./data/storegate.db"},
		{"grant_on", cfg.Sources[0].GrantOn, "order_paid"},
		{"allow_ips", strings.Join(cfg.Sources[0].AllowIPs, ","), "xsolla"},
		{"log level", cfg.LogLevel, "info"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want default %q", tc.name, tc.got, tc.want)
		}
	}
	// The limits' defaults are webhooks.Config's, applied there.
	if cfg.Limits != (LimitsConfig{}) {
		t.Errorf("limits = %+v, want them left to webhooks.Config", cfg.Limits)
	}
}

func TestParseConfig_ReportsEveryProblemWithItsPath(t *testing.T) {
	bad := `
listen: nowhere
metrics_listen: nowhere
admin:
  tokens: ["short"]
sources:
  - name: Bad_Name
    kind: xsolla
    secrets: ["${MISSING_SECRET}"]
    target: ghost
    allow_ips: ["10.0.0.0/33"]
    grant_on: whenever
targets:
  - name: ledger
    kind: ledger
    player_pattern: "("
catalog:
  - {sku: gem, type: coin}
`
	_, err := ParseConfig([]byte(bad), env(nil))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	// An unset variable is reported with its line, and does not hide the rest.
	if !strings.Contains(err.Error(), "sources[0].secrets[0]: environment variable MISSING_SECRET is not set") {
		t.Fatalf("err = %v", err)
	}
	_, err = ParseConfig([]byte(bad), env(map[string]string{"MISSING_SECRET": "x"}))
	for _, want := range []string{
		`listen: "nowhere" is not host:port`,
		`metrics_listen: "nowhere" is the senders' listener`,
		"admin.tokens[0]: a token needs at least 16 characters",
		`sources[0].name: "Bad_Name"`,
		`sources[0].target: "ghost" is not a configured target`,
		`sources[0].allow_ips: "10.0.0.0/33"`,
		`sources[0].grant_on: "whenever"`,
		"targets[0].player_pattern:",
		"catalog[0] (gem).currency: required for type coin",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestParseConfig_RejectsUnknownKeys(t *testing.T) {
	_, err := ParseConfig([]byte(minimal+"\nlisten_adress: 1.2.3.4:5\n"), env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "s"}))
	if err == nil || !strings.Contains(err.Error(), "listen_adress") {
		t.Fatalf("err = %v, want the misspelt key named", err)
	}
}

func TestParseConfig_ErrorsNeverShowSecrets(t *testing.T) {
	cfg := strings.Replace(minimal, "target: ledger", "target: nowhere", 1)
	_, err := ParseConfig([]byte(cfg), env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "very-secret-value"}))
	if err == nil || strings.Contains(err.Error(), "very-secret-value") {
		t.Fatalf("err = %v, want an error without the secret", err)
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	raw, err := os.ReadFile("../../examples/storegate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(raw, env(map[string]string{
		"STOREGATE_ADMIN_TOKEN": "demo-admin-token-DO-NOT-USE", "STOREGATE_XSOLLA_SECRET": "x",
		"STOREGATE_GAME_TOKEN": "demo-game-token-DO-NOT-USE", "STOREGATE_PARTNER_SECRET": "demo-partner-secret-DO-NOT-USE",
		"STOREGATE_STORES_SECRET":    "whsec_ZGVtby1zdG9yZXMtc2VjcmV0LURPLU5PVC1VU0U=",
		"STOREGATE_PLAYER_TOKEN_KEY": "demo-player-token-key-DO-NOT-USE-0123"}))
	if err != nil {
		t.Fatal(err)
	}
	skus := map[string]bool{}
	for _, s := range cfg.Catalog {
		skus[s.SKU] = true
	}
	if !skus["crystals_100"] || !skus["starter_sword"] {
		t.Fatal("the example catalog must have crystals_100 and starter_sword")
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("sources: [{name: a, secrets: ['${X}']}]"))
	f.Add([]byte("listen: [1, {a: b}]\ncatalog: 3"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := ParseConfig(raw, env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "s", "X": "y"}))
		if err == nil && (cfg == nil || cfg.Listen == "") {
			t.Fatal("accepted a config without filling defaults")
		}
	})
}

// The timeout is compared with the lease as serve will use them, defaults
// included: config check must not pass what serve then refuses.
func TestParseConfig_TimeoutUnderDefaultLease(t *testing.T) {
	for _, tc := range []struct {
		dispatch string
		ok       bool
	}{
		{"dispatch: {timeout: 40s}", false},
		{"dispatch: {lease: 5s}", false}, // default timeout 10s
		{"dispatch: {lease: 5s, timeout: 2s}", true},
		{"dispatch: {timeout: 20s}", true},
	} {
		_, err := ParseConfig([]byte(minimal+tc.dispatch+"\n"), env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "s"}))
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "dispatch.timeout")) {
			t.Errorf("%s: err = %v, want ok=%v", tc.dispatch, err, tc.ok)
		}
	}
}

// A zero the YAML layer passes through stands for the component's default,
// as it did when the YAML layer filled it in: a written 0 is valid and a
// negative value is still reported.
func TestParseConfig_ZeroIsTheComponentsDefault(t *testing.T) {
	for _, tc := range []struct {
		yaml, problem string
	}{
		{"limits: {body_bytes: 0, user_deadline: 0s}", ""},
		{"limits: {body_bytes: -1}", "limits.body_bytes: -1 is outside 1024..16777216"},
		{"limits: {body_bytes: 1023}", "limits.body_bytes: 1023 is outside"},
		{"limits: {user_deadline: -1s}", "limits.user_deadline: must be between 0 and 10s"},
		{"limits: {user_deadline: 11s}", "limits.user_deadline: must be between 0 and 10s"},
	} {
		_, err := ParseConfig([]byte(minimal+tc.yaml+"\n"), env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "s"}))
		if tc.problem == "" && err != nil || tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)) {
			t.Errorf("%s: err = %v, want %q", tc.yaml, err, tc.problem)
		}
	}
}

// Xsolla takes at most 200 custom_parameters in a linking answer: more
// would fail every linking webhook at run time, so config check refuses it.
func TestParseConfig_LinkParametersWithinXsollasLimit(t *testing.T) {
	var params strings.Builder
	for i := range 201 {
		fmt.Fprintf(&params, "      p%d: %d\n", i, i)
	}
	withParams := func(list string) string {
		return strings.Replace(minimal, "    target: ledger\n", "    target: ledger\n    link_parameters:\n"+list, 1)
	}
	vars := env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "s"})
	if _, err := ParseConfig([]byte(withParams(params.String())), vars); err == nil ||
		!strings.Contains(err.Error(), "sources[0].link_parameters: Xsolla takes at most 200 custom_parameters") {
		t.Fatalf("201 link_parameters: err = %v, want a problem at sources[0].link_parameters", err)
	}
	if _, err := ParseConfig([]byte(withParams("      server: eu-1\n      tier: 2\n")), vars); err != nil {
		t.Fatalf("2 link_parameters: %v", err)
	}
}

// A key an older storegate read says what replaced it.
func TestParseConfig_RemovedKeysSayWhatReplacedThem(t *testing.T) {
	cfg := minimal + "dispatch:\n  workers: 8\n  breaker_wait: 5s\n"
	_, err := ParseConfig([]byte(cfg), env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "s"}))
	for _, want := range []string{"dispatch.workers: no longer a key: each target delivers up to its targets[].max_in_flight",
		"dispatch.breaker_wait: no longer a key"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}
}
