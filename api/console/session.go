package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Sessions live in the process's memory: signing out ends one at once, and
// a restart signs everyone out. Behind a load balancer with several
// replicas, the console's requests must reach the replica that signed in
// (operations.md says how).

const (
	sessionCookie = "storegate_console"
	csrfField     = "csrf"
	// maxSessions bounds the memory sessions take; a sign-in beyond it
	// first drops the expired ones, then the oldest.
	maxSessions = 10000
)

// session is one signed-in operator.
type session struct {
	operator string
	csrf     string
	expires  time.Time // absolute: SessionTTL after sign-in
	lastSeen time.Time
}

// checkCSRF compares a form's token with the session's in constant time.
func (s *session) checkCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}

type sessions struct {
	mu   sync.Mutex
	byID map[[32]byte]*session // by the SHA-256 of the cookie's value
	cfg  Config
}

func newSessions(cfg Config) *sessions {
	return &sessions{byID: map[[32]byte]*session{}, cfg: cfg}
}

// randomToken is 32 random bytes, URL-safe.
func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// start opens a session for operator and returns the cookie's value.
func (ss *sessions) start(operator string) (string, *session) {
	now := ss.cfg.Now()
	id := randomToken()
	s := &session{operator: operator, csrf: randomToken(), expires: now.Add(ss.cfg.SessionTTL), lastSeen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.byID) >= maxSessions {
		ss.evict(now)
	}
	ss.byID[sha256.Sum256([]byte(id))] = s
	return id, s
}

// evict drops expired sessions, and the oldest when none had expired.
func (ss *sessions) evict(now time.Time) {
	var oldest [32]byte
	var oldestAt time.Time
	for k, s := range ss.byID {
		if ss.expired(s, now) {
			delete(ss.byID, k)
			continue
		}
		if oldestAt.IsZero() || s.lastSeen.Before(oldestAt) {
			oldest, oldestAt = k, s.lastSeen
		}
	}
	if len(ss.byID) >= maxSessions {
		delete(ss.byID, oldest)
	}
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	return !now.Before(s.expires) || !now.Before(s.lastSeen.Add(ss.cfg.IdleTimeout))
}

// get is the live session of a cookie's value, or nil; a request renews
// its idle time.
func (ss *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	key := sha256.Sum256([]byte(id))
	now := ss.cfg.Now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[key]
	if s == nil {
		return nil
	}
	if ss.expired(s, now) {
		delete(ss.byID, key)
		return nil
	}
	s.lastSeen = now
	return s
}

// end forgets a cookie's session.
func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, sha256.Sum256([]byte(id)))
}

// setCookie sets a console cookie: HttpOnly, SameSite=Strict, for the
// console's paths only, Secure over TLS, for maxAge; 0 deletes it. A
// Max-Age, not an Expires: the browser counts it from when it got the
// cookie, so a clock that differs from the gateway's changes nothing.
func (h *handlers) setCookie(c *fiber.Ctx, name, value, path string, maxAge time.Duration) {
	ck := &fiber.Cookie{Name: name, Value: value, Path: path, HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode,
		Secure: h.cfg.SecureCookies || c.Protocol() == "https", MaxAge: int(maxAge / time.Second)}
	if maxAge <= 0 {
		ck.MaxAge = -1
	}
	c.Cookie(ck)
}
