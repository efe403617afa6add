package console

import (
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/server"
)

// The sign-in form has no session to hold its CSRF token, so the token
// goes both in a cookie and in the form, and the two must match (a forged
// post from another site can set neither).
const signInCookie = "storegate_console_signin"

type loginView struct {
	CSRF string
}

func (h *handlers) handleLoginForm(c *fiber.Ctx) error {
	if h.sessions.get(c.Cookies(sessionCookie)) != nil {
		return c.Redirect("/console/", fiber.StatusSeeOther)
	}
	token := randomToken()
	h.setCookie(c, signInCookie, token, loginPath, time.Hour)
	return h.render(c, fiber.StatusOK, "login.html", "Sign in", loginView{CSRF: token})
}

func (h *handlers) handleSignIn(c *fiber.Ctx) error {
	addr := h.srv.ClientIP(c).String()
	if blocked, until := h.limiter.blocked(addr); blocked {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(1, int(until.Sub(h.cfg.Now()).Seconds()+0.5))))
		return storegate.Errorf(storegate.CodeTooManyRequests, "too many failed sign-ins from your address: try again after %s",
			until.UTC().Format(timeFormat))
	}
	form, cookie := c.FormValue(csrfField), c.Cookies(signInCookie)
	if form == "" || subtle.ConstantTimeCompare([]byte(form), []byte(cookie)) != 1 {
		return errForged
	}
	i, ok := server.MatchToken(c.FormValue("token"), h.tokens)
	if !ok {
		h.limiter.fail(addr)
		h.log.Warn("console sign-in refused", "request_id", server.RequestID(c), "address", addr)
		return storegate.Errorf(storegate.CodeUnauthorized, "that token is not one of the gateway's admin tokens")
	}
	operator, err := operatorName(c.FormValue("name"), i)
	if err != nil {
		return err
	}
	id, s := h.sessions.start(operator)
	h.setCookie(c, sessionCookie, id, "/console", s.expires.Sub(h.cfg.Now()))
	h.setCookie(c, signInCookie, "", loginPath, 0)
	h.log.Info("console sign-in", "request_id", server.RequestID(c), "operator", operator, "address", addr)
	return c.Redirect("/console/", fiber.StatusSeeOther)
}

// operatorName is who the operator says they are, recorded with every
// change they make; without a name, which admin token signed in (its
// position in the config, never the token).
func operatorName(name string, token int) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return fmt.Sprintf("console (admin token %d)", token+1), nil
	}
	if len(name) > 64 || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", storegate.FieldError("your name is at most 64 characters, on one line", "name")
	}
	// Fiber's form values point into a buffer the next request reuses; the
	// session keeps the name.
	return strings.Clone(name), nil
}

func (h *handlers) handleSignOut(c *fiber.Ctx) error {
	s := current(c)
	h.sessions.end(c.Cookies(sessionCookie))
	h.setCookie(c, sessionCookie, "", "/console", 0)
	h.log.Info("console sign-out", "request_id", server.RequestID(c), "operator", s.operator)
	return c.Redirect(loginPath, fiber.StatusSeeOther)
}
