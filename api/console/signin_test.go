package console_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"storegate/api/console"
	"storegate/internal/gatewaytest"
)

func consoleGateway(t testing.TB, edit ...func(*console.Config, *console.Deps)) *gatewaytest.Gateway {
	return gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), gatewaytest.WithConsole(edit...))
}

// Every route but the sign-in form and the style sheet needs a session: a
// request without one, a read or a form post, goes to sign-in and changes
// nothing.
func TestConsole_WithoutSessionRedirectsToSignIn(t *testing.T) {
	g := consoleGateway(t)
	c := newClient(t, g)
	for _, path := range []string{"/console/", "/console/search?q=player-1", "/console/players/player-1", "/console/nowhere"} {
		wantRedirect(t, c.get(path), "/console/login")
	}
	before := g.Everything(t)
	wantRedirect(t, c.post("/console/logout", url.Values{}), "/console/login")
	gatewaytest.SameRows(t, before, g.Everything(t))
	if p := c.get("/console/login"); p.StatusCode != http.StatusOK || !strings.Contains(p.Body, `name="token"`) {
		t.Fatalf("sign-in form: %d\n%s", p.StatusCode, p.Body)
	}
	if p := c.get("/console/assets/console.css"); p.StatusCode != http.StatusOK || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("style sheet: %d %s", p.StatusCode, p.Header.Get("Content-Type"))
	}
}

// The session cookie is HttpOnly and SameSite=Strict, Secure behind TLS,
// and expires; pages carry a Content-Security-Policy; the token shows in no
// page, header or log line.
func TestSignIn_CookieHeadersAndNoSecretAnywhere(t *testing.T) {
	var logs bytes.Buffer
	g := gatewaytest.New(t, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), gatewaytest.WithLog(&logs), gatewaytest.WithConsole())
	c := newClient(t, g)
	c.header.Set("X-Forwarded-Proto", "https")
	form := c.get("/console/login")
	p := c.post("/console/login", url.Values{"csrf": {csrf(t, form)}, "token": {gatewaytest.AdminToken}, "name": {"alice"}})
	wantRedirect(t, p, "/console/")
	var session *http.Cookie
	for _, ck := range p.Cookies() {
		if ck.Name == "storegate_console" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || !session.Secure ||
		session.Path != "/console" || session.MaxAge != 8*3600 {
		t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Strict, Secure, path /console, expiring in 8h", session)
	}
	home := c.get("/console/")
	if csp := home.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("Content-Security-Policy = %q, want default-src 'none' and no script allowed", csp)
	}
	if !strings.Contains(home.Body, ">alice<") {
		t.Errorf("home page does not name the operator:\n%s", home.Body)
	}
	for _, pg := range []page{form, p, home, c.get("/console/players/player-1"), c.get("/console/assets/console.css")} {
		if strings.Contains(pg.Body, gatewaytest.AdminToken) || strings.Contains(headerText(pg.Header), gatewaytest.AdminToken) {
			t.Fatalf("%s shows the admin token", pg.Request.URL)
		}
	}
	if strings.Contains(logs.String(), gatewaytest.AdminToken) || strings.Contains(logs.String(), session.Value) {
		t.Fatal("the logs hold the admin token or the session cookie")
	}
	// Over plain HTTP the cookie cannot be Secure, or the browser would drop it.
	plain := newClient(t, g)
	plain.signIn("bob")
}

func headerText(h http.Header) string {
	var b strings.Builder
	h.Write(&b)
	return b.String()
}

// A wrong token is refused; past the attempts allowed, even the right one
// is refused until the window ends.
func TestSignIn_WrongTokensAreRateLimited(t *testing.T) {
	g := consoleGateway(t)
	c := newClient(t, g)
	try := func(token string) page {
		form := c.get("/console/login")
		return c.post("/console/login", url.Values{"csrf": {csrf(t, form)}, "token": {token}})
	}
	for range 5 {
		if p := try("wrong-token-0123456789"); p.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token: %d, want 401:\n%s", p.StatusCode, p.Body)
		}
	}
	p := try(gatewaytest.AdminToken)
	if p.StatusCode != http.StatusTooManyRequests || p.Header.Get("Retry-After") != "900" {
		t.Fatalf("after 5 failures: %d (Retry-After %q), want 429 with Retry-After 900:\n%s", p.StatusCode, p.Header.Get("Retry-After"), p.Body)
	}
	g.Clock.Advance(15 * time.Minute)
	wantRedirect(t, try(gatewaytest.AdminToken), "/console/")
}

// The sign-in form's token must come back with it: a post forged from
// elsewhere, right admin token or not, signs nobody in.
func TestSignIn_ForgedPostRefused(t *testing.T) {
	g := consoleGateway(t)
	c := newClient(t, g)
	p := c.post("/console/login", url.Values{"csrf": {"made-up"}, "token": {gatewaytest.AdminToken}})
	if p.StatusCode != http.StatusForbidden || c.cookies["storegate_console"] != "" {
		t.Fatalf("forged sign-in: %d, cookies %v; want 403 and no session", p.StatusCode, c.cookies)
	}
}

// Signing out ends the session: its cookie, replayed, gets sign-in again.
// An idle session ends by itself.
func TestSession_SignOutAndIdleTimeout(t *testing.T) {
	g := consoleGateway(t)
	c := newClient(t, g)
	token := c.signIn("alice")
	stolen := c.cookies["storegate_console"]
	wantRedirect(t, c.post("/console/logout", url.Values{"csrf": {token}}), "/console/login")
	c.cookies["storegate_console"] = stolen
	wantRedirect(t, c.get("/console/"), "/console/login")

	c.signIn("alice")
	g.Clock.Advance(29 * time.Minute)
	if p := c.get("/console/"); p.StatusCode != http.StatusOK {
		t.Fatalf("after 29 idle minutes: %d, want the page", p.StatusCode)
	}
	g.Clock.Advance(30 * time.Minute)
	wantRedirect(t, c.get("/console/"), "/console/login")
}

// Turned off, the console serves nothing.
func TestConsole_Disabled(t *testing.T) {
	g := consoleGateway(t, func(c *console.Config, _ *console.Deps) { c.Disabled = true })
	if p := newClient(t, g).get("/console/login"); p.StatusCode != http.StatusNotFound {
		t.Fatalf("disabled console: %d, want 404", p.StatusCode)
	}
}
