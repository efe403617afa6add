package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The walk-throughs in README.md and docs/ are replayed as written, so they
// cannot drift from what storegate does. CONTRIBUTING.md describes the part
// of the shell they may use and how their output is compared.

// walkThrough is one section of the docs whose title says walk-through.
type walkThrough struct {
	name  string // file: heading
	steps []step
}

// step is one command line and the output the docs show under it.
type step struct {
	line int // in the markdown file, for messages
	cmd  string
	want []string
}

func TestWalkThroughs(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var walks []walkThrough
	for _, f := range append([]string{"../../README.md"}, files...) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		walks = append(walks, parseWalkThroughs(filepath.Base(f), string(raw))...)
	}
	if len(walks) < 6 {
		t.Fatalf("found %d walk-throughs, want at least 6 (README, a partner, a store proxy, a game client, the economy, dead letters)", len(walks))
	}
	for _, w := range walks {
		t.Run(w.name, func(t *testing.T) {
			sh := newShell(t)
			for _, s := range w.steps {
				sh.step(s)
			}
		})
	}
	// One after another on one gateway, as a reader might: none disturbs
	// another, since each makes its own state.
	t.Run("all on one gateway", func(t *testing.T) {
		sh := newShell(t)
		for _, w := range walks {
			sh.vars = map[string]string{}
			for _, s := range w.steps {
				sh.step(s)
			}
		}
	})
}

var (
	heading = regexp.MustCompile(`^(#+) (.*)`)
	fence   = regexp.MustCompile("^```")
)

// parseWalkThroughs returns the sh blocks of every walk-through section,
// cut into steps. It also refuses a bare `storegate` anywhere: it is not on
// a reader's PATH.
func parseWalkThroughs(file, md string) []walkThrough {
	var out []walkThrough
	var cur *walkThrough
	level, inBlock, isSh := 0, false, false
	var block []string
	start := 0
	for i, line := range strings.Split(md, "\n") {
		switch {
		case fence.MatchString(line) && !inBlock:
			inBlock, isSh, block, start = true, strings.TrimPrefix(line, "```") == "sh", nil, i+2
		case fence.MatchString(line):
			inBlock = false
			if isSh && cur != nil {
				cur.steps = append(cur.steps, parseSteps(block, start)...)
			}
		case inBlock:
			block = append(block, line)
		case heading.MatchString(line):
			m := heading.FindStringSubmatch(line)
			if cur != nil && len(m[1]) <= level {
				cur = nil
			}
			if strings.Contains(strings.ToLower(m[2]), "walk-through") {
				out = append(out, walkThrough{name: file + ": " + m[2]})
				cur, level = &out[len(out)-1], len(m[1])
			}
		}
	}
	return out
}

// parseSteps joins continued lines and gives each command the comment
// lines right under it as its output.
func parseSteps(lines []string, firstLine int) []step {
	var steps []step
	afterCmd := false
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch trimmed := strings.TrimSpace(line); {
		case trimmed == "":
			afterCmd = false
		case strings.HasPrefix(trimmed, "#"):
			if afterCmd {
				s := &steps[len(steps)-1]
				s.want = append(s.want, strings.TrimPrefix(strings.TrimPrefix(trimmed, "#"), " "))
			}
		default:
			s := step{line: firstLine + i}
			for strings.HasSuffix(line, "\\") || strings.HasSuffix(line, "|") {
				if strings.HasSuffix(line, "\\") {
					line = strings.TrimSuffix(line, "\\")
				}
				i++
				if i == len(lines) {
					break
				}
				line += " " + strings.TrimSpace(lines[i])
			}
			s.cmd = line
			steps = append(steps, s)
			afterCmd = true
		}
	}
	return steps
}

// shell runs steps against a gateway started from examples/storegate.yaml,
// as `make run` would, on a temporary folder and free ports.
type shell struct {
	t             *testing.T
	vars          map[string]string
	gw, connector string // replace 127.0.0.1:8080 and 127.0.0.1:9090
	client        *http.Client
}

func newShell(t *testing.T) *shell {
	sh := &shell{t: t, vars: map[string]string{}, connector: freeAddr(t), client: &http.Client{Timeout: 30 * time.Second}}
	sh.gw = startDemoGateway(t, sh.connector)
	return sh
}

// makeRunEnv is the environment `make run` gives the gateway: the demo
// secrets of the Makefile.
func makeRunEnv(t *testing.T) map[string]string {
	raw, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^export (STOREGATE_\w+) \?= (.*)$`).FindAllStringSubmatch(string(raw), -1) {
		env[m[1]] = m[2]
	}
	return env
}

func startDemoGateway(t *testing.T, connector string) string {
	raw, err := os.ReadFile("../../examples/storegate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := makeRunEnv(t)
	cfg, err := ParseConfig(raw, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store.DSN = "sqlite:" + filepath.Join(t.TempDir(), "storegate.db")
	for i := range cfg.FulfillOrders.Connectors {
		cfg.FulfillOrders.Connectors[i].URL = strings.Replace(cfg.FulfillOrders.Connectors[i].URL, "127.0.0.1:9090", connector, 1)
	}
	g, err := NewGateway(context.Background(), cfg, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveUntilCleanup(t, g, ln, nil)
	return ln.Addr().String()
}

// step runs one command line and compares its output with the docs'.
func (sh *shell) step(s step) {
	sh.t.Helper()
	where := fmt.Sprintf("line %d: %s", s.line, s.cmd)
	if name, value, ok := sh.assignment(s.cmd); ok {
		v, err := sh.expandWord(value)
		if err != nil {
			sh.t.Fatalf("%s\n%v", where, err)
		}
		sh.vars[name] = v
		if strings.HasPrefix(s.cmd, "export ") {
			sh.t.Setenv(name, v)
		}
		if len(s.want) > 0 {
			sh.t.Errorf("%s\nan assignment prints nothing; the docs show %q", where, s.want)
		}
		return
	}
	out, known, err := sh.eval(s.cmd)
	switch {
	case err != nil:
		sh.t.Fatalf("%s\n%v", where, err)
	case !known:
		return // make build, make run, the connector: the test stands in
	case len(s.want) == 0:
		sh.t.Errorf("%s\nthe docs show no output; it prints:\n%s", where, out)
	default:
		if problem := compareOutput(s.want, out); problem != "" {
			sh.t.Errorf("%s\n%s\ndocs:\n%s\ngot:\n%s", where, problem, strings.Join(s.want, "\n"), out)
		}
	}
}

var assign = regexp.MustCompile(`^(?:export )?([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

func (sh *shell) assignment(cmd string) (name, value string, ok bool) {
	m := assign.FindStringSubmatch(cmd)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// eval runs a pipeline. known is false for the commands the test stands in
// for.
func (sh *shell) eval(cmd string) (out string, known bool, err error) {
	switch strings.TrimSpace(cmd) {
	case "make build", "make run":
		return "", false, nil
	case "go run ./examples/connector":
		startConnector(sh.t, sh.connector)
		return "", false, nil
	}
	stages, err := sh.words(cmd)
	if err != nil {
		return "", true, err
	}
	for _, argv := range stages {
		if out, err = sh.run(argv, out); err != nil {
			return "", true, fmt.Errorf("%s: %w", argv[0], err)
		}
	}
	return out, true, nil
}

// run runs one stage of a pipeline on stdin.
func (sh *shell) run(argv []string, stdin string) (string, error) {
	switch {
	case argv[0] == "printf" && len(argv) == 3 && argv[1] == "%s":
		return argv[2], nil
	case argv[0] == "bin/storegate":
		return sh.storegate(argv[1:], stdin)
	case len(argv) > 3 && argv[0] == "go" && argv[1] == "run" && argv[2] == "./cmd/storegate":
		return sh.storegate(argv[3:], stdin)
	case argv[0] == "curl":
		return sh.curl(argv[1:], stdin)
	case argv[0] == "sed" && len(argv) == 3 && argv[1] == "-E":
		return sed(argv[2], stdin)
	}
	return "", fmt.Errorf("the walk-through test does not know this command (see CONTRIBUTING.md)")
}

func (sh *shell) storegate(args []string, stdin string) (string, error) {
	for i, a := range args {
		args[i] = sh.rewrite(a)
	}
	var out bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &out, &out)
	return out.String(), err
}

// rewrite points the docs' addresses at this test's gateway and connector.
func (sh *shell) rewrite(s string) string {
	s = strings.ReplaceAll(s, "127.0.0.1:8080", sh.gw)
	return strings.ReplaceAll(s, "127.0.0.1:9090", sh.connector)
}

// curl does what curl does with the flags the docs use.
func (sh *shell) curl(args []string, stdin string) (string, error) {
	method, url, body, include := "", "", (*string)(nil), false
	header := http.Header{}
	var user, pass string
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			i++
			if i == len(args) {
				return ""
			}
			return args[i]
		}
		switch a {
		case "-s":
		case "-i", "-si", "-is":
			include = true
		case "-X":
			method = next()
		case "-H":
			h := next()
			if h == "@-" {
				h = stdin
			}
			for _, line := range strings.Split(strings.TrimSpace(h), "\n") {
				k, v, ok := strings.Cut(line, ":")
				if !ok {
					return "", fmt.Errorf("header %q has no colon", line)
				}
				header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
			}
		case "-d", "--data", "--data-binary":
			b := next()
			body = &b
			if header.Get("Content-Type") == "" {
				header.Set("Content-Type", "application/x-www-form-urlencoded") // as curl does
			}
		case "-u":
			user, pass, _ = strings.Cut(next(), ":")
		default:
			if strings.HasPrefix(a, "-") || url != "" {
				return "", fmt.Errorf("curl %s: not a flag the walk-through test knows", a)
			}
			url = sh.rewrite(a)
		}
	}
	if method == "" {
		method = map[bool]string{true: http.MethodPost, false: http.MethodGet}[body != nil]
	}
	var r io.Reader
	if body != nil {
		r = strings.NewReader(*body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return "", err
	}
	req.Header = header
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := sh.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || !include {
		return string(b), err
	}
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s\r\n", resp.Proto, resp.Status)
	resp.Header.Write(&head)
	return head.String() + "\r\n" + string(b), nil
}

func sed(script, stdin string) (string, error) {
	m := regexp.MustCompile(`^s/(.*)/(.*)/$`).FindStringSubmatch(script)
	if m == nil {
		return "", fmt.Errorf("only s/RE/REPL/ is known, not %q", script)
	}
	re, err := regexp.Compile(m[1])
	if err != nil {
		return "", err
	}
	repl := regexp.MustCompile(`\\([0-9])`).ReplaceAllString(m[2], "$${$1}")
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(stdin, "\n"), "\n") {
		out = append(out, re.ReplaceAllString(line, repl))
	}
	return strings.Join(out, "\n") + "\n", nil
}

// builds holds one build per package, made once per test binary.
var builds sync.Map // package -> *build

type build struct {
	once sync.Once
	path string
	err  error
}

// goBuild builds the package at pkg (relative to this one) once, and
// returns the executable.
func goBuild(t *testing.T, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "storegate-build")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(filepath.Clean(pkg)))
		if pkg == "." {
			b.path = filepath.Join(dir, "storegate")
		}
		if out, err := exec.Command("go", "build", "-o", b.path, pkg).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// startConnector runs examples/connector on addr until the test ends.
func startConnector(t *testing.T, addr string) {
	cmd := exec.Command(goBuild(t, "../../examples/connector"), "--listen", addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the connector did not start")
}

// A reader has no storegate on their PATH: the docs call bin/storegate
// (after make build) or go run ./cmd/storegate. README.md stays short.
func TestDocs_CallTheCommandLineByItsPath(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	bare := regexp.MustCompile("(?m)(?:^|[\\s`(])(storegate (?:serve|config|migrate|sign|deadletters|version)\\b.*)")
	for _, f := range append([]string{"../../README.md", "../../CONTRIBUTING.md"}, files...) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range bare.FindAllStringSubmatch(string(raw), -1) {
			t.Errorf("%s: %q calls a bare storegate", filepath.Base(f), m[1])
		}
		if n := strings.Count(string(raw), "\n"); f == "../../README.md" && n > 300 {
			t.Errorf("README.md has %d lines, more than 300", n)
		}
	}
}
