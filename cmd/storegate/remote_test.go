package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storegate/adapters/ags/agstest"
	"storegate/adapters/studio/studiotest"
	"storegate/mapping"
	"storegate/signing"
)

// These tests run a whole gateway in this process, over a real SQLite file
// and real sockets on 127.0.0.1, in front of a fake AGS and a fake studio
// backend.

const (
	liveAdminToken = "live-admin-token-0123456789"
	liveXsolla     = "live-xsolla-secret"
	liveStudio     = "whsec_bGl2ZS1zdHVkaW8tc2VjcmV0LTAxMjM0NTY3ODk="
)

type live struct {
	t    *testing.T
	url  string
	gw   *Gateway
	logs *lockedWriter
}

// startLive serves a gateway configured with both remote targets, one
// Xsolla source for each (xs-ags, xs-studio). extra is appended to the
// dispatch block and each target.
func startLive(t *testing.T, agsURL, studioURL string, dispatch, target string) *live {
	t.Helper()
	cfgText := fmt.Sprintf(`
log_level: warn
store: {dsn: "sqlite:%s"}
admin: {tokens: ["${ADMIN}"]}
dispatch: {lease: 10s, timeout: 3s, %s}
sources:
  - {name: xs-ags, kind: xsolla, secrets: ["${XS}"], target: ags, allow_ips: ["127.0.0.1", "::1"]}
  - {name: xs-studio, kind: xsolla, secrets: ["${XS}"], target: studio, allow_ips: ["127.0.0.1", "::1"]}
targets:
  - name: ags
    kind: ags
    %s
    ags: {base_url: %q, namespace: game, client_id: storegate-client, client_secret: "${AGS_SECRET}"}
  - name: studio
    kind: http
    %s
    http: {url: %q, secrets: ["${STUDIO_SECRET}"]}
catalog:
  - {sku: crystals_100, type: coin, currency: CRYSTALS, amount: 100}
  - {sku: starter_sword, type: durable}
`, filepath.Join(t.TempDir(), "storegate.db"), dispatch, target, agsURL, target, studioURL)
	return serveLive(t, cfgText, map[string]string{"ADMIN": liveAdminToken, "XS": liveXsolla,
		"AGS_SECRET": "s3cret-client", "STUDIO_SECRET": liveStudio}, slog.LevelWarn)
}

// serveLive serves, on 127.0.0.1 until the test ends, a gateway built from
// cfgText with vars for its ${VAR}s, logging at level and above.
func serveLive(t *testing.T, cfgText string, vars map[string]string, level slog.Level) *live {
	t.Helper()
	cfg, err := ParseConfig([]byte(cfgText), env(vars))
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedWriter{w: &bytes.Buffer{}}
	g, err := NewGateway(context.Background(), cfg, Options{Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.Close()
		t.Fatal(err)
	}
	serveUntilCleanup(t, g, ln, nil)
	return &live{t: t, url: "http://" + ln.Addr().String(), gw: g, logs: logs}
}

func (l *live) log() string { return l.logs.String() }

// send posts an Xsolla body, signed, to source.
func (l *live) send(source, body string) (int, string) {
	l.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, l.url+"/webhooks/xsolla/"+source, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", signing.XsollaSignature([]byte(body), liveXsolla))
	resp, err := client.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func (l *live) post(source string, order int, player string, skus ...string) (int, error) {
	var items []string
	for _, s := range skus {
		items = append(items, fmt.Sprintf(`{"sku":%q,"quantity":1}`, s))
	}
	body := fmt.Sprintf(`{"notification_type":"order_paid","order":{"id":%d},"user":{"external_id":%q},"items":[%s]}`,
		order, player, strings.Join(items, ","))
	req, _ := http.NewRequest(http.MethodPost, l.url+"/webhooks/xsolla/"+source, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", signing.XsollaSignature([]byte(body), liveXsolla))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// count runs a COUNT-like query on the gateway's store.
func (l *live) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := l.gw.DB.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fakes(t *testing.T) (*agstest.Server, *studiotest.Server) {
	t.Helper()
	a := agstest.New()
	s, err := studiotest.New(liveStudio)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		s.Close()
		if p := s.Problems(); len(p) > 0 {
			t.Errorf("the studio backend saw contract violations: %q", p)
		}
	})
	return a, s
}

// cli runs a storegate subcommand and returns its output.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(""), &out, &out)
	return out.String(), err
}

// A grant refused for good (AGS: unknown item 30343; studio: 400
// UNKNOWN_SKU) becomes a dead letter that keeps the target's words; once
// the cause is fixed, support replays it with `storegate deadletters` and
// it takes effect exactly once.
func TestGateway_DeadLettersReplayedAfterTheFix(t *testing.T) {
	agsFake, studio := fakes(t)
	agsFake.SetItemUnknown("starter_sword", true)
	studio.Reject("starter_sword", true)
	l := startLive(t, agsFake.URL, studio.URL, "backoff_base: 100ms, backoff_max: 1s",
		"retry: {attempts: 2, wait_min: 10ms, wait_max: 100ms}")
	t.Setenv("STOREGATE_ADMIN_TOKEN", liveAdminToken)

	for _, src := range []string{"xs-ags", "xs-studio"} {
		for order, skus := range map[int][]string{1: {"crystals_100", "starter_sword"}, 2: {"crystals_100"}} {
			if status, err := l.post(src, order, "player-1", skus...); err != nil || status != 204 {
				t.Fatalf("post %s order %d: %d %v", src, order, status, err)
			}
		}
	}
	waitUntil(t, 10*time.Second, "two dead letters and two grants done", func() bool {
		return l.count(t, `SELECT COUNT(*) FROM outbox WHERE state = 'dead'`) == 2 && l.count(t, `SELECT COUNT(*) FROM outbox WHERE state = 'done'`) == 2
	})
	agsID, studioID := mapping.XsollaFulfillID("xs-ags", 1), mapping.XsollaFulfillID("xs-studio", 1)

	out, err := cli(t, "deadletters", "list", "--url", l.url)
	if err != nil {
		t.Fatalf("list: %v\n%s", err, out)
	}
	t.Logf("storegate deadletters list:\n%s", out)
	for _, want := range []string{agsID, studioID, "code=30343", "code=UNKNOWN_SKU", "2 dead letter(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	out, err = cli(t, "deadletters", "show", agsID, "--url", l.url)
	if err != nil || !strings.Contains(out, "Item of sku [starter_sword] does not exist") || !strings.Contains(out, `"notification_type": "order_paid"`) {
		t.Errorf("show: %v\n%s", err, out)
	}

	// The cause is fixed: the item exists in AGS, the studio knows the SKU.
	agsFake.SetItemUnknown("starter_sword", false)
	studio.Reject("starter_sword", false)
	if out, err := cli(t, "deadletters", "replay", "--url", l.url, "--by", "alice", agsID); err != nil || !strings.Contains(out, "replayed "+agsID) {
		t.Fatalf("replay by id: %v\n%s", err, out)
	}
	if out, err := cli(t, "deadletters", "replay", "--url", l.url, "--by", "alice", "--target", "studio", "--since", "1h"); err != nil || !strings.Contains(out, "1 replayed") {
		t.Fatalf("replay by filter: %v\n%s", err, out)
	}
	waitUntil(t, 10*time.Second, "replayed grants done", func() bool {
		return l.count(t, `SELECT COUNT(*) FROM outbox WHERE state = 'done'`) == 4
	})
	for key, n := range agsFake.Effects() {
		if n != 1 {
			t.Errorf("AGS %s took effect %d times, want once", key, n)
		}
	}
	if got, want := len(agsFake.Effects()), 2; got != want {
		t.Errorf("AGS effects = %v, want %d grants", agsFake.Effects(), want)
	}
	if got := studio.Effects(); got[studioID] != 1 || got[mapping.XsollaFulfillID("xs-studio", 2)] != 1 || len(got) != 2 {
		t.Errorf("studio effects = %v, want each grant once", got)
	}
	// A command that is not dead cannot be discarded; the error says why.
	out, err = cli(t, "deadletters", "discard", "--url", l.url, "--reason", "test", agsID)
	if err == nil || !strings.Contains(err.Error(), "409 CONFLICT") {
		t.Errorf("discard of a done command: %v\n%s", err, out)
	}
	out, err = cli(t, "deadletters", "show", agsID, "--url", l.url)
	if err != nil || !strings.Contains(out, `"actor": "alice"`) || !strings.Contains(out, `"replays": 1`) {
		t.Errorf("show after replay: %v\n%s", err, out)
	}
}

func TestDeadLettersCLI_Usage(t *testing.T) {
	t.Setenv("STOREGATE_ADMIN_TOKEN", "")
	for _, args := range [][]string{
		{"deadletters"}, {"deadletters", "frob"}, {"deadletters", "list"}, // no token
	} {
		if out, err := cli(t, args...); err == nil {
			t.Errorf("storegate %v: no error\n%s", args, out)
		}
	}
	t.Setenv("STOREGATE_ADMIN_TOKEN", "some-token-value-123")
	for _, args := range [][]string{
		{"deadletters", "show"}, {"deadletters", "discard", "x"}, {"deadletters", "replay", "x", "--all"},
		{"deadletters", "list", "--since", "last tuesday"},
	} {
		if out, err := cli(t, args...); err == nil {
			t.Errorf("storegate %v: no error\n%s", args, out)
		}
	}
}

// Xsolla's user_validation asks the source's target: AGS through IAM, the
// studio backend through its user check (with attributes); a target that
// cannot answer gets Xsolla a 503, never a wrong "no" (a yes is remembered
// for a few seconds, so the down cases ask about players not seen yet).
func TestGateway_UserValidationThroughTargets(t *testing.T) {
	agsFake, studio := fakes(t)
	agsFake.SetUsers("player-1")
	studio.SetUser("player-1", map[string]any{"level": 12})
	l := startLive(t, agsFake.URL, studio.URL, "backoff_base: 100ms", "retry: {attempts: 1}")
	tests := []struct {
		name, source, player string
		down                 bool
		status               int
		body                 string
	}{
		{"AGS knows the player", "xs-ags", "player-1", false, 204, ""},
		{"AGS does not", "xs-ags", "ghost", false, 400, `"code":"INVALID_USER"`},
		{"AGS is down", "xs-ags", "player-2", true, 503, `"code":"SERVICE_UNAVAILABLE"`},
		{"the studio knows the player, with attributes", "xs-studio", "player-1", false, 200, `{"user_attributes":{"level":12}}`},
		{"the studio does not", "xs-studio", "ghost", false, 400, `"code":"INVALID_USER"`},
		{"the studio is down", "xs-studio", "ghost", true, 503, `"code":"SERVICE_UNAVAILABLE"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			agsFake.SetDown(tc.down)
			studio.SetDown(tc.down)
			defer agsFake.SetDown(false)
			defer studio.SetDown(false)
			body := fmt.Sprintf(`{"notification_type":"user_validation","user":{"id":%q}}`, tc.player)
			req, _ := http.NewRequest(http.MethodPost, l.url+"/webhooks/xsolla/"+tc.source, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", signing.XsollaSignature([]byte(body), liveXsolla))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(raw), tc.body) {
				t.Errorf("answer = %d %s, want %d with %s", resp.StatusCode, raw, tc.status, tc.body)
			}
		})
	}
}
