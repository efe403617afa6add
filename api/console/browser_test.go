package console_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"storegate/internal/gatewaytest"
)

// The console in a real browser: Debian's Chromium, driven over the
// DevTools protocol, against the gateway on a 127.0.0.1 listener. Without
// a browser the test skips and says how to install one; in CI
// (STOREGATE_CI=1, set by .ci/run, which installs it) it fails instead.
// With STOREGATE_SCREENSHOTS=1 it writes the screenshots in docs/console/.

// chromium finds the browser: STOREGATE_CHROMIUM, else Debian's.
func chromium(t *testing.T) string {
	t.Helper()
	for _, candidate := range []string{os.Getenv("STOREGATE_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"} {
		if candidate == "" {
			continue
		}
		if path, err := exec.LookPath(candidate); err == nil {
			return path
		}
	}
	const how = "no Chromium found (/usr/bin/chromium, or set STOREGATE_CHROMIUM): install it with `apt-get install chromium` to run the browser tests"
	if os.Getenv("STOREGATE_CI") == "1" {
		t.Fatal(how + "; CI must run them")
	}
	t.Skip(how)
	return ""
}

// browser starts a headless Chromium with a profile of its own and returns
// its context. The deadline only stops a hung browser from holding the
// test run; nothing is measured.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelDeadline := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelDeadline(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// serve serves the gateway on a 127.0.0.1 listener until the test ends.
func serve(t *testing.T, g *gatewaytest.Gateway) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.App.Listener(ln)
	t.Cleanup(func() { g.App.Shutdown() })
	return "http://" + ln.Addr().String()
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Location())
		t.Fatalf("%v (at %s)", err, loc)
	}
}

func text(t *testing.T, ctx context.Context, selector string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(selector)))
	if err != nil {
		t.Fatalf("text of %s: %v", selector, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// screenshot writes the page as docs/console/<name>.png when asked to.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("STOREGATE_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Support's day in the browser: sign in, find the player of a granted and
// a refunded order, read the balances and the timeline, make a manual
// update (and see a forged form refused), replay a dead letter, sign out
// and be refused.
func TestBrowser_SupportConsole(t *testing.T) {
	ctx := browser(t)
	g := consoleGateway(t)
	paidAndRefunded(t, g)
	dead := g.DeadLetter(t, 5001, "player-1")
	g.Health.Sample()
	gw := serve(t, g)

	// Without a session, the console sends the browser to sign in.
	do(t, ctx, chromedp.Navigate(gw+"/console/players/player-1"), chromedp.WaitVisible(chromedp.CSS(`input[name="token"]`)))
	if loc := location(t, ctx); loc != gw+"/console/login" {
		t.Fatalf("without a session the browser is at %s, want the sign-in form", loc)
	}
	screenshot(t, ctx, "sign-in")
	do(t, ctx, chromedp.SendKeys(chromedp.CSS(`input[name="token"]`), gatewaytest.AdminToken),
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "alice"),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS(`input[name="q"]`)))
	if op := text(t, ctx, "#operator"); op != "alice" {
		t.Fatalf("signed in as %q, want alice", op)
	}

	// Find the player by the refunded order's Xsolla id.
	do(t, ctx, chromedp.SendKeys(chromedp.CSS(`input[name="q"]`), "1002"), chromedp.Click(chromedp.CSS(`form.search button`)),
		chromedp.WaitVisible(chromedp.CSS(`#orders`)))
	if loc := location(t, ctx); loc != gw+"/console/players/player-1" {
		t.Fatalf("the search led to %s, want player-1's page", loc)
	}
	if got := text(t, ctx, "#wallet-CRYSTALS .balance"); got != "100" {
		t.Errorf("CRYSTALS balance reads %q, want 100", got)
	}
	if got := text(t, ctx, "#wallet-CRYSTALS .spending"); got != "allowed" {
		t.Errorf("spending reads %q, want allowed", got)
	}
	timeline := text(t, ctx, "#orders")
	for _, want := range []string{"xsolla.xs.order.1002 revoked", "received order_canceled answered 204", "revoked revoke order_canceled",
		"xsolla.xs.order.1001 granted", "dead-lettered fulfill"} {
		if !strings.Contains(timeline, want) {
			t.Errorf("the timeline does not read %q:\n%s", want, timeline)
		}
	}
	screenshot(t, ctx, "player")

	// A manual update: review, then confirm.
	do(t, ctx, chromedp.Click(chromedp.CSS(`#wallet-CRYSTALS a`)), chromedp.WaitVisible(chromedp.CSS(`input[name="amount"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="amount"]`), "50"),
		chromedp.SendKeys(chromedp.CSS(`input[name="reason"]`), "goodwill after an outage"),
		chromedp.Click(chromedp.CSS(`#review-button`)), chromedp.WaitVisible(chromedp.CSS(`#review`)))
	if got := text(t, ctx, "#review"); !strings.Contains(got, "that balance goes from 0 to 50") {
		t.Errorf("the review reads %q", got)
	}
	screenshot(t, ctx, "adjust-review")
	do(t, ctx, chromedp.Click(chromedp.CSS(`#confirm`)), chromedp.WaitVisible(chromedp.CSS(`#done`)))
	if got := text(t, ctx, "#total"); got != "150" {
		t.Errorf("after the update the total reads %q, want 150", got)
	}

	// A form on a page elsewhere posts to the console with the browser's
	// cookie but without the session's token: refused, nothing changed.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<form method="post" action="%s/console/players/player-1/adjust?currency=CRYSTALS">
			<input type="hidden" name="step" value="confirm"><input type="hidden" name="key" value="console-evil">
			<input type="hidden" name="amount" value="100000"><input type="hidden" name="platform" value="System">
			<input type="hidden" name="reason" value="free"><input type="hidden" name="csrf" value="guessed">
			<button id="go" type="submit">win a prize</button></form>`, gw)
	}))
	defer evil.Close()
	before := g.Everything(t)
	do(t, ctx, chromedp.Navigate(evil.URL), chromedp.Click(chromedp.CSS(`#go`)), chromedp.WaitVisible(chromedp.CSS(`#message`)))
	if got := text(t, ctx, "#message"); !strings.Contains(got, "nothing was changed") {
		t.Errorf("the forged post got %q", got)
	}
	gatewaytest.SameRows(t, before, g.Everything(t))
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 150 {
		t.Fatalf("after the forged post the balance is %d, want 150", got)
	}

	// Replay the dead letter, after confirming.
	do(t, ctx, chromedp.Navigate(gw+"/console/deadletters?player=player-1"), chromedp.WaitVisible(chromedp.CSS(`#deadletters`)))
	screenshot(t, ctx, "dead-letters")
	do(t, ctx, chromedp.Click(chromedp.CSS(`#deadletters a[href^="/console/deadletters/"]`)), chromedp.WaitVisible(chromedp.CSS(`#attempts`)))
	if got := text(t, ctx, "#command"); got != dead {
		t.Fatalf("the dead letter shown is %q, want %s", got, dead)
	}
	screenshot(t, ctx, "dead-letter")
	do(t, ctx, chromedp.Click(chromedp.CSS(`#replay`)), chromedp.WaitVisible(chromedp.CSS(`#confirm`)),
		chromedp.Click(chromedp.CSS(`#confirm`)), chromedp.WaitVisible(chromedp.CSS(`#done`)))
	if got := text(t, ctx, "#state"); got != "pending" {
		t.Errorf("after the replay the state reads %q, want pending", got)
	}
	g.Drain(t)
	if got := g.Balance(t, "player-1", "CRYSTALS"); got != 250 {
		t.Errorf("after the replay was delivered the balance is %d, want 250", got)
	}

	do(t, ctx, chromedp.Navigate(gw+"/console/health"), chromedp.WaitVisible(chromedp.CSS(`#targets`)))
	if got := text(t, ctx, "#target-ledger"); !strings.HasPrefix(got, "ledger") {
		t.Errorf("the health page's ledger row reads %q", got)
	}
	screenshot(t, ctx, "health")

	// Sign out; the session's pages then send the browser to sign in.
	do(t, ctx, chromedp.Click(chromedp.CSS(`form.signout button`)), chromedp.WaitVisible(chromedp.CSS(`input[name="token"]`)),
		chromedp.Navigate(gw+"/console/players/player-1"), chromedp.WaitVisible(chromedp.CSS(`input[name="token"]`)))
	if loc := location(t, ctx); loc != gw+"/console/login" {
		t.Fatalf("after signing out the browser is at %s, want the sign-in form", loc)
	}
	if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the browser hung")
	}
}
