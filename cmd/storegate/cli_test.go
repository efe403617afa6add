package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// runCLI runs storegate with args and returns what it printed on each stream.
func runCLI(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

// Every --help prints that command's usage on standard output and succeeds.
func TestHelp_PrintsTheCommandsUsageAndSucceeds(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "storegate serve --config FILE"},
		{[]string{"help"}, "storegate serve --config FILE"},
		{[]string{"serve", "--help"}, "Usage: storegate serve --config FILE"},
		{[]string{"serve", "-h"}, "Usage: storegate serve --config FILE"},
		{[]string{"config", "--help"}, "Usage: storegate config check FILE"},
		{[]string{"config", "check", "--help"}, "Usage: storegate config check FILE"},
		{[]string{"migrate", "--help"}, "Usage: storegate migrate --config FILE"},
		{[]string{"sign", "--help"}, "Usage: storegate sign xsolla"},
		{[]string{"sign", "xsolla", "--help"}, "Usage: storegate sign xsolla"},
		{[]string{"sign", "jwt", "-h"}, "storegate sign jwt --secret KEY"},
		{[]string{"deadletters", "--help"}, "storegate deadletters list"},
		{[]string{"deadletters", "replay", "--help"}, "storegate deadletters replay"},
		{[]string{"keys", "--help"}, "storegate keys import --sku SKU FILE"},
		{[]string{"keys", "import", "--help"}, "storegate keys import --sku SKU FILE"},
		{[]string{"keys", "count", "-h"}, "storegate keys count  --sku SKU"},
		{[]string{"version", "--help"}, "Usage: storegate version"},
	} {
		stdout, stderr, err := runCLI(tc.args...)
		if err != nil || !strings.Contains(stdout, tc.want) || stderr != "" {
			t.Errorf("storegate %s: err %v, stdout %q, stderr %q; want the usage (%q) on stdout only",
				strings.Join(tc.args, " "), err, stdout, stderr, tc.want)
		}
	}
}

// A command line that cannot run prints the usage on standard error and is a
// usage error (exit status 2); a failure to do the work is not.
func TestUsageErrors_AreToldApartFromFailures(t *testing.T) {
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"serve"}, {"serve", "--nope"}, {"config"}, {"config", "check"},
		{"config", "check", "a.yaml", "--config", "b.yaml"}, {"migrate"}, {"sign"}, {"sign", "xsolla"},
		{"sign", "rot13", "--secret", "x"}, {"sign", "jwt", "--secret", "k"}, {"version", "extra"},
		{"keys"}, {"keys", "import"}, {"keys", "count", "--sku", "x", "extra"},
	} {
		_, stderr, err := runCLI(args...)
		if !errors.As(err, new(usageError)) || !strings.Contains(stderr, "storegate") {
			t.Errorf("storegate %s: err %v (%T), stderr %q; want a usage error and the usage on stderr",
				strings.Join(args, " "), err, err, stderr)
		}
	}
	_, _, err := runCLI("config", "check", filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || errors.As(err, new(usageError)) {
		t.Errorf("config check of a missing file: err %v, want a failure that is not a usage error", err)
	}
}

func TestVersion_PrintsTheBuildAndGoVersions(t *testing.T) {
	stdout, _, err := runCLI("version")
	if err != nil || !strings.HasPrefix(stdout, "storegate ") || !strings.Contains(stdout, runtime.Version()) {
		t.Fatalf("version: %q, %v; want storegate's version and %s", stdout, err, runtime.Version())
	}
	defer func(v string) { version = v }(version)
	version = "v1.2.3"
	if stdout, _, _ := runCLI("version"); !strings.HasPrefix(stdout, "storegate v1.2.3 ") {
		t.Errorf("version with -X main.version=v1.2.3: %q", stdout)
	}
}

// demoEnv sets the variables examples/storegate.yaml reads, as make run does.
func demoEnv(t *testing.T) {
	for k, v := range map[string]string{
		"STOREGATE_ADMIN_TOKEN": "demo-admin-token-DO-NOT-USE", "STOREGATE_GAME_TOKEN": "demo-game-token-DO-NOT-USE",
		"STOREGATE_XSOLLA_SECRET": "demo-xsolla-secret-DO-NOT-USE", "STOREGATE_PARTNER_SECRET": "demo-partner-secret-DO-NOT-USE",
		"STOREGATE_STORES_SECRET":    "whsec_ZGVtby1zdG9yZXMtc2VjcmV0LURPLU5PVC1VU0U=",
		"STOREGATE_PLAYER_TOKEN_KEY": "demo-player-token-key-DO-NOT-USE-0123",
	} {
		t.Setenv(k, v)
	}
}

func TestConfigCheck_TakesTheFileEitherWay(t *testing.T) {
	demoEnv(t)
	const file = "../../examples/storegate.yaml"
	for _, args := range [][]string{{"config", "check", file}, {"config", "check", "--config", file}, {"config", "check", "--config=" + file}} {
		stdout, _, err := runCLI(args...)
		if err != nil || !strings.HasPrefix(stdout, file+": ok (3 sources, 1 targets, 6 catalog entries)") {
			t.Errorf("storegate %s: %q, %v", strings.Join(args, " "), stdout, err)
		}
	}
}

// Every problem of a config is reported at once, each with the file, the
// line, the path and what is wrong in the user's words.
func TestConfigCheck_ReportsEveryProblemWithItsLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "storegate.yaml")
	write(t, file, `listen: 127.0.0.1:8080
log_levl: debug
admin:
  tokens: ["${SG_TEST_UNSET_ADMIN}"]
limits:
  body_bytes: lots
  user_deadline: soon
sources:
  - name: xsolla-demo
    kind: xsolla
    secrets: ["${SG_TEST_UNSET_SECRET}"]
    target: ledger
    alow_ips: ["127.0.0.1"]
    target: ledger
targets:
  - name: ledger
    kind: ledger
    players: player-1
catalog:
  - {sku: gem, type: coin}
`)
	_, _, err := runCLI("config", "check", file)
	want := []string{
		file + ": 9 problem(s)",
		file + ":2: log_levl: unknown key (did you mean log_level?)",
		file + ":4: admin.tokens[0]: environment variable SG_TEST_UNSET_ADMIN is not set",
		file + `:6: limits.body_bytes: "lots" is not a whole number`,
		file + `:7: limits.user_deadline: "soon" is not a duration like 500ms, 2s or 1h`,
		file + ":11: sources[0].secrets[0]: environment variable SG_TEST_UNSET_SECRET is not set",
		file + ":13: sources[0].alow_ips: unknown key (did you mean allow_ips?)",
		file + ":14: sources[0].target: given twice (first on line 12)",
		file + ":18: targets[0].players: want a list",
		file + ":20: catalog[0] (gem).currency: required for type coin",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("config check:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

func TestConfigCheck_ReportsASyntaxErrorWithItsLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "storegate.yaml")
	write(t, file, "listen: 127.0.0.1:8080\nadmin:\n  tokens: [\"a\"\n")
	_, _, err := runCLI("config", "check", "--config", file)
	if err == nil || !regexp.MustCompile(regexp.QuoteMeta(file)+`:\d+: did not find expected`).MatchString(err.Error()) {
		t.Errorf("config check: %v; want the file, a line and yaml's words", err)
	}
}

// migrate says which migrations it applied now, the store's and the
// ledger's, and which were already applied, so a second run applies none.
func TestMigrate_SaysWhatItAppliedNow(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "storegate.yaml")
	write(t, file, strings.Replace(minimal, "admin:", "store: {dsn: \"sqlite:"+filepath.Join(dir, "sg.db")+"\"}\nadmin:", 1))
	t.Setenv("ADMIN", "0123456789abcdef0")
	t.Setenv("XS_SECRET", "s")
	first, _, err := runCLI("migrate", "--config", file)
	if err != nil || !strings.HasPrefix(first, "applied now: 0001_init, 0001_ledger_init, 0002_deadletters,") || !strings.HasSuffix(first, "\nalready applied: none\n") {
		t.Fatalf("first migrate: %q, %v", first, err)
	}
	second, _, err := runCLI("migrate", "--config", file)
	applied := strings.TrimSuffix(strings.TrimPrefix(first, "applied now: "), "\nalready applied: none\n")
	if err != nil || second != "applied now: none\nalready applied: "+applied+"\n" {
		t.Fatalf("second migrate: %q, %v; want none applied now, and %s already", second, err, applied)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
