package signing_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"storegate/signing"
)

// RFC 7515 appendix A.1: an HS256 JWS with its key. It carries no sub, which
// storegate requires, so a correct verifier gets past the signature and
// refuses the claims; one flipped signature byte is a signature error.
const (
	rfcKey   = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
	rfcToken = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." +
		"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ." +
		"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

func TestJWT_RFC7515Vector(t *testing.T) {
	key, err := base64.RawURLEncoding.DecodeString(rfcKey)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1300819380-60, 0)
	v, err := signing.NewJWT([][]byte{key}, signing.JWTConfig{Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(rfcToken); !errors.Is(err, signing.ErrTokenClaims) {
		t.Fatalf("RFC token: err = %v, want ErrTokenClaims (valid signature, no sub)", err)
	}
	bad := rfcToken[:len(rfcToken)-2] + "Xk"
	if bad == rfcToken {
		bad = rfcToken[:len(rfcToken)-2] + "Yk"
	}
	if _, err := v.Verify(bad); !errors.Is(err, signing.ErrTokenSignature) {
		t.Fatalf("tampered RFC token: err = %v, want ErrTokenSignature", err)
	}
}

func TestJWT_Verify(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	oldKey, newKey := []byte("old-key-0123456789abcdef0123456789"), []byte("new-key-0123456789abcdef0123456789")
	v, err := signing.NewJWT([][]byte{oldKey, newKey}, signing.JWTConfig{Issuer: "game", Audience: "storegate",
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	good := signing.Claims{Issuer: "game", Subject: "player-1", Audience: signing.Audience{"other", "storegate"},
		ExpiresAt: now.Add(time.Hour).Unix(), IssuedAt: now.Unix()}
	sign := func(key []byte, c signing.Claims) string {
		tok, err := signing.SignJWT(key, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	with := func(f func(*signing.Claims)) signing.Claims { c := good; f(&c); return c }
	// alg none and a header naming another algorithm, with a valid MAC.
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	valid := sign(newKey, good)
	parts := strings.Split(valid, ".")
	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{
		{"new key", valid, nil},
		{"old key (rotation)", sign(oldKey, good), nil},
		{"within leeway after exp", sign(newKey, with(func(c *signing.Claims) { c.ExpiresAt = now.Add(-20 * time.Second).Unix() })), nil},
		{"unknown key", sign([]byte("some-other-key-0123456789abcdef012"), good), signing.ErrTokenSignature},
		{"expired", sign(newKey, with(func(c *signing.Claims) { c.ExpiresAt = now.Add(-time.Minute).Unix() })), signing.ErrTokenExpired},
		{"not valid yet", sign(newKey, with(func(c *signing.Claims) { c.NotBefore = now.Add(time.Minute).Unix() })), signing.ErrTokenExpired},
		{"issued in the future", sign(newKey, with(func(c *signing.Claims) { c.IssuedAt = now.Add(time.Hour).Unix() })), signing.ErrTokenExpired},
		{"no exp", sign(newKey, with(func(c *signing.Claims) { c.ExpiresAt = 0 })), signing.ErrTokenClaims},
		{"no sub", sign(newKey, with(func(c *signing.Claims) { c.Subject = "" })), signing.ErrTokenClaims},
		{"wrong issuer", sign(newKey, with(func(c *signing.Claims) { c.Issuer = "evil" })), signing.ErrTokenClaims},
		{"wrong audience", sign(newKey, with(func(c *signing.Claims) { c.Audience = signing.Audience{"other"} })), signing.ErrTokenClaims},
		{"alg none", noneHeader + "." + parts[1] + "." + parts[2], signing.ErrTokenMalformed},
		{"alg none, empty signature", noneHeader + "." + parts[1] + ".", signing.ErrTokenMalformed},
		{"two parts", parts[0] + "." + parts[1], signing.ErrTokenMalformed},
		{"payload swapped", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"player-2","exp":9999999999}`)) + "." + parts[2], signing.ErrTokenSignature},
		{"not base64", "a.b.c", signing.ErrTokenMalformed},
		{"huge", strings.Repeat("a", 9000), signing.ErrTokenMalformed},
		{"empty", "", signing.ErrTokenMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(tc.token)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && c.Subject != "player-1" {
				t.Fatalf("subject = %q, want player-1", c.Subject)
			}
			if err != nil && c.Subject != "" {
				t.Fatalf("a refused token returned claims %+v", c)
			}
		})
	}
}

func TestNewJWT_RefusesEmptyKeys(t *testing.T) {
	for _, keys := range [][][]byte{nil, {[]byte("")}} {
		if _, err := signing.NewJWT(keys, signing.JWTConfig{}); !errors.Is(err, signing.ErrNoSecret) {
			t.Fatalf("NewJWT(%q) err = %v, want ErrNoSecret", keys, err)
		}
	}
	if _, err := signing.SignJWT(nil, signing.Claims{Subject: "p"}); !errors.Is(err, signing.ErrNoSecret) {
		t.Fatalf("SignJWT without key: err = %v", err)
	}
}
