package main

import (
	"reflect"
	"strings"
	"testing"
)

const remoteTargets = `
admin:
  tokens: ["${ADMIN}"]
sources:
  - {name: xs-ags, kind: xsolla, secrets: ["${XS_SECRET}"], target: ags}
  - {name: xs-studio, kind: xsolla, secrets: ["${XS_SECRET}"], target: studio}
targets:
  - name: ags
    kind: ags
    ags:
      base_url: https://studio.prod.gamingservices.accelbyte.io
      namespace: mygame
      client_id: ${AGS_CLIENT_ID}
      client_secret: ${AGS_CLIENT_SECRET}
  - name: studio
    kind: http
    timeout: 2s
    max_in_flight: 4
    retry: {attempts: 2, wait_min: 50ms, wait_max: 500ms}
    breaker: {failures: 3, open_for: 10s, probes: 2}
    http:
      url: https://backend.example.com/storegate
      secrets: ["${STUDIO_SECRET}"]
catalog:
  - {sku: crystals_100, type: coin, currency: CRYSTALS, amount: 100}
`

var remoteEnv = map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "xs", "AGS_CLIENT_ID": "client",
	"AGS_CLIENT_SECRET": "ags-secret-value", "STUDIO_SECRET": "whsec_c3R1ZGlvLXNlY3JldA=="}

func TestParseConfig_RemoteTargets(t *testing.T) {
	cfg, err := ParseConfig([]byte(remoteTargets), env(remoteEnv))
	if err != nil {
		t.Fatal(err)
	}
	a, s := cfg.Targets[0], cfg.Targets[1]
	if a.AGS.ClientSecret != "ags-secret-value" || a.AGS.Namespace != "mygame" {
		t.Errorf("ags = %+v", a.AGS)
	}
	// Unset keys keep the adapters' documented defaults (applied there).
	client := a.client()
	if client.Timeout != 0 || client.MaxInFlight != 0 || client.Attempts != 0 {
		t.Errorf("ags client = %+v, want zero values (defaults)", client)
	}
	sc := s.client()
	if sc.Timeout.String() != "2s" || sc.MaxInFlight != 4 || sc.Attempts != 2 || sc.RetryWaitMin.String() != "50ms" || sc.RetryWaitMax.String() != "500ms" {
		t.Errorf("studio client = %+v", sc)
	}
	if s.Breaker.Failures != 3 || s.Breaker.OpenFor.D().String() != "10s" || s.Breaker.Probes != 2 {
		t.Errorf("studio breaker = %+v", s.Breaker)
	}
	if s.HTTP.URL != "https://backend.example.com/storegate" || len(s.HTTP.Secrets) != 1 {
		t.Errorf("studio = %+v", s.HTTP)
	}
}

func TestParseConfig_RemoteTargetProblems(t *testing.T) {
	bad := `
admin:
  tokens: ["0123456789abcdef0"]
targets:
  - name: ags
    kind: ags
    timeout: 2m
    retry: {attempts: 11, wait_min: 2s, wait_max: 1s}
    ags:
      base_url: not-a-url
      client_id: c
      client_secret: ""
      fulfillment_api: v1
      user_check_path: /iam/users
  - name: studio
    kind: http
    max_in_flight: -1
    players: ["p1"]
    spend_order: [Steam]
    http:
      url: https://backend.example.com
      secrets: ["whsec_!!!"]
      revoke_path: revoke
  - name: nohttp
    kind: http
  - name: ledger
    kind: ledger
    timeout: 1s
    ags: {namespace: x}
`
	_, err := ParseConfig([]byte(bad), env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		"targets[0].ags.base_url: want an http(s) URL",
		"targets[0].ags.iam_url: want an http(s) URL",
		"targets[0].ags.namespace: required",
		"targets[0].ags.client_secret: required (is its environment variable empty?)",
		`targets[0].ags.fulfillment_api: "v1" is not v2 or v3`,
		"targets[0].ags.user_check_path: want a path starting with / that contains {userId}",
		"targets[0].timeout: must be between 0 and 1m",
		"targets[0].retry.attempts: must be between 0 and 10",
		"targets[0].retry.wait_max: must not be below wait_min",
		"targets[1]: players, player_pattern, revocation and spend_order apply to the ledger only",
		"targets[1].http.secrets[0]: not a Standard Webhooks secret (whsec_ + base64)",
		"targets[1].http.revoke_path: want a path starting with /",
		"targets[1].max_in_flight: must be between 0 and 1024",
		"targets[2].http: required for a kind: http target",
		"targets[3].ags: only a kind: ags target takes this block",
		"targets[3]: timeout, max_in_flight and retry apply to ags and http targets only",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing problem %q in:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "whsec_!!!") {
		t.Errorf("the error shows a secret:\n%v", err)
	}
}

func TestParseConfig_DispatchRetryAfterMax(t *testing.T) {
	cfg, err := ParseConfig([]byte(minimal+"dispatch: {defer_max: 2h, retry_after_max: 10m}\n"),
		env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := []string{cfg.Dispatch.DeferMax.D().String(), cfg.Dispatch.RetryAfterMax.D().String()}, []string{"2h0m0s", "10m0s"}; !reflect.DeepEqual(got, want) {
		t.Errorf("dispatch = %v, want %v", got, want)
	}
}
