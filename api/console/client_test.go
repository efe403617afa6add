package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"storegate/internal/gatewaytest"
)

// client is a browser as far as the console can tell: it keeps the
// cookies the console sets and sends them back, and posts forms.
type client struct {
	t       testing.TB
	g       *gatewaytest.Gateway
	cookies map[string]string
	// header is added to every request.
	header http.Header
}

func newClient(t testing.TB, g *gatewaytest.Gateway) *client {
	return &client{t: t, g: g, cookies: map[string]string{}, header: http.Header{}}
}

// page is an answer with its body read.
type page struct {
	*http.Response
	Body string
}

func (c *client) do(req *http.Request) page {
	c.t.Helper()
	for k, v := range c.header {
		req.Header[k] = v
	}
	for name, value := range c.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	resp := c.g.Do(c.t, req)
	body, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	return page{resp, string(body)}
}

func (c *client) get(path string) page {
	c.t.Helper()
	return c.do(httptest.NewRequest(http.MethodGet, path, nil))
}

func (c *client) post(path string, form url.Values) page {
	c.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the token in a page's forms.
func csrf(t testing.TB, p page) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", p.Body)
	}
	return m[1]
}

// signIn signs in as name and returns the token the session's forms carry.
func (c *client) signIn(name string) string {
	c.t.Helper()
	form := c.get("/console/login")
	p := c.post("/console/login", url.Values{"csrf": {csrf(c.t, form)}, "token": {gatewaytest.AdminToken}, "name": {name}})
	if p.StatusCode != http.StatusSeeOther || p.Header.Get("Location") != "/console/" {
		c.t.Fatalf("sign-in: %d to %q, want 303 to /console/:\n%s", p.StatusCode, p.Header.Get("Location"), p.Body)
	}
	return csrf(c.t, c.get("/console/"))
}

// wantRedirect fails unless p redirects to location.
func wantRedirect(t testing.TB, p page, location string) {
	t.Helper()
	if p.StatusCode != http.StatusSeeOther || p.Header.Get("Location") != location {
		t.Fatalf("answer %d to %q, want 303 to %s:\n%s", p.StatusCode, p.Header.Get("Location"), location, p.Body)
	}
}
