package signing

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// JWTs signed with HS256 (RFC 7519, HMAC-SHA256), the only algorithm
// accepted: a token naming any other ("none", RS256 with an HMAC key, ...) is
// refused before its signature is looked at. Game clients prove who they are
// with one (Fulfill Orders), and storegate issues one to a distribution
// partner for each user it checked (users/token).

var (
	// ErrTokenMalformed means the token is not three base64url parts of
	// JSON, or names an algorithm other than HS256.
	ErrTokenMalformed = errors.New("signing: token is malformed")
	// ErrTokenSignature means no key made the token's signature.
	ErrTokenSignature = errors.New("signing: token signature does not match")
	// ErrTokenExpired means exp is past, or nbf or iat is in the future.
	ErrTokenExpired = errors.New("signing: token is expired or not valid yet")
	// ErrTokenClaims means a required claim is missing or has the wrong value.
	ErrTokenClaims = errors.New("signing: token claims are not acceptable")
)

// Claims are the registered claims storegate reads, plus Email for the
// partner user token.
type Claims struct {
	Issuer    string   `json:"iss,omitempty"`
	Subject   string   `json:"sub"`
	Audience  Audience `json:"aud,omitempty"`
	ExpiresAt int64    `json:"exp"`
	NotBefore int64    `json:"nbf,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
	Email     string   `json:"email,omitempty"`
	// Country is the user's country (ISO 3166-1 alpha-2) when the partner
	// gave one: it chooses the tax rate of the user's orders.
	Country string `json:"country,omitempty"`
	// Scope narrows what the token may do; empty means everything its
	// audience allows. See ScopeBuyer.
	Scope string `json:"scope,omitempty"`
}

// ScopeBuyer marks a partner user token issued for an e-mail address
// without a player id (game keys are sold to buyers by e-mail). Its subject
// is the address, never a player, so it can order nothing that goes into a
// player's inventory.
const ScopeBuyer = "buyer"

// Audience is the aud claim: one string or an array of strings.
type Audience []string

func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// JWTConfig says what a verified token must carry.
type JWTConfig struct {
	// Issuer, when set, must equal the iss claim. Default: not checked.
	Issuer string
	// Audience, when set, must be one of the aud claim's values. Default:
	// not checked.
	Audience string
	// Leeway absorbs clock skew on exp, nbf and iat. Default 30s.
	Leeway time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// JWT verifies HS256 tokens made with any of its keys (several for rotation).
type JWT struct {
	keys [][]byte
	cfg  JWTConfig
}

// NewJWT returns a verifier. Keys must be non-empty; RFC 7518 asks for at
// least 256 bits, which config validation enforces for configured keys.
func NewJWT(keys [][]byte, cfg JWTConfig) (*JWT, error) {
	if len(keys) == 0 {
		return nil, ErrNoSecret
	}
	for _, k := range keys {
		if len(k) == 0 {
			return nil, ErrNoSecret
		}
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &JWT{keys: keys, cfg: cfg}, nil
}

var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// SignJWT returns an HS256 token for claims, signed with key.
func SignJWT(key []byte, c Claims) (string, error) {
	if len(key) == 0 {
		return "", ErrNoSecret
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signed := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	return signed + "." + base64.RawURLEncoding.EncodeToString(jwtMAC(key, signed)), nil
}

func jwtMAC(key []byte, signed string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

// maxToken bounds the work one token can cause.
const maxToken = 8 << 10

// Verify checks a token's algorithm, signature (constant-time, against every
// key), lifetime and the configured issuer and audience, and returns its
// claims. A token without exp or sub is refused: every token must end.
func (j *JWT) Verify(token string) (Claims, error) {
	var c Claims
	if len(token) > maxToken {
		return c, ErrTokenMalformed
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c, ErrTokenMalformed
	}
	rawHeader, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return c, ErrTokenMalformed
	}
	var h struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if json.Unmarshal(rawHeader, &h) != nil || h.Alg != "HS256" || (h.Typ != "" && !strings.EqualFold(h.Typ, "JWT")) {
		return c, ErrTokenMalformed
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != sha256.Size {
		return c, ErrTokenMalformed
	}
	signed := parts[0] + "." + parts[1]
	match := 0
	for _, k := range j.keys {
		if hmac.Equal(sig, jwtMAC(k, signed)) {
			match = 1
		}
	}
	if match != 1 {
		return c, ErrTokenSignature
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, ErrTokenMalformed
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&c); err != nil {
		return Claims{}, ErrTokenMalformed
	}
	now := j.cfg.Now()
	leeway := int64(j.cfg.Leeway / time.Second)
	switch {
	case c.ExpiresAt == 0 || c.Subject == "":
		return Claims{}, ErrTokenClaims
	case now.Unix() > c.ExpiresAt+leeway,
		c.NotBefore != 0 && now.Unix()+leeway < c.NotBefore,
		c.IssuedAt != 0 && now.Unix()+leeway < c.IssuedAt:
		return Claims{}, ErrTokenExpired
	case j.cfg.Issuer != "" && c.Issuer != j.cfg.Issuer:
		return Claims{}, ErrTokenClaims
	case j.cfg.Audience != "" && !slices.Contains(c.Audience, j.cfg.Audience):
		return Claims{}, ErrTokenClaims
	}
	return c, nil
}
