package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// HMACConfig configures a generic HMAC verifier over the raw body.
type HMACConfig struct {
	Header    string   // required, e.g. "X-Signature"
	Algorithm string   // "sha256" (default) or "sha512"
	Encoding  string   // "hex" (default) or "base64"
	Prefix    string   // optional literal prefix before the encoded MAC, stripped before comparing
	Secrets   []string // raw secret bytes as given; several for rotation; at least one, none empty
}

// HMAC verifies a MAC of the raw body sent in one header, as Convoy's simple
// scheme or GitHub's X-Hub-Signature-256 ("sha256=<hex>") do.
type HMAC struct {
	header  string
	newHash func() hash.Hash
	size    int
	base64  bool
	prefix  string
	secrets [][]byte
}

// NewHMAC validates cfg and returns the verifier. An empty header, an unknown
// algorithm or encoding, or no secret (or an empty one) is an error.
func NewHMAC(cfg HMACConfig) (*HMAC, error) {
	if cfg.Header == "" {
		return nil, errors.New("signing: hmac header name is required")
	}
	h := &HMAC{header: cfg.Header, prefix: cfg.Prefix}
	switch strings.ToLower(cfg.Algorithm) {
	case "", "sha256":
		h.newHash, h.size = sha256.New, sha256.Size
	case "sha512":
		h.newHash, h.size = sha512.New, sha512.Size
	default:
		return nil, fmt.Errorf("signing: unknown hmac algorithm %q (want sha256 or sha512)", cfg.Algorithm)
	}
	switch strings.ToLower(cfg.Encoding) {
	case "", "hex":
	case "base64":
		h.base64 = true
	default:
		return nil, fmt.Errorf("signing: unknown hmac encoding %q (want hex or base64)", cfg.Encoding)
	}
	if len(cfg.Secrets) == 0 {
		return nil, ErrNoSecret
	}
	h.secrets = make([][]byte, len(cfg.Secrets))
	for i, s := range cfg.Secrets {
		if s == "" {
			// The index, never the value: errors must not carry secrets.
			return nil, fmt.Errorf("%w: hmac secret %d is empty", ErrNoSecret, i)
		}
		h.secrets[i] = []byte(s)
	}
	return h, nil
}

// Verify checks the configured header against body. The header must start
// with the prefix and hold a MAC of the right length in the configured
// encoding, otherwise it is ErrMalformedSignature. Hex may be in either case.
func (h *HMAC) Verify(header func(string) string, body []byte) error {
	v := header(h.header)
	if v == "" {
		return ErrMissingSignature
	}
	enc, ok := strings.CutPrefix(v, h.prefix)
	if !ok {
		return ErrMalformedSignature
	}
	got, err := h.decode(enc)
	if err != nil || len(got) != h.size {
		return ErrMalformedSignature
	}
	// Check every secret without stopping at the first match, so the time taken
	// does not say which secret signed the request.
	match := false
	for _, s := range h.secrets {
		if hmac.Equal(got, h.mac(s, body)) {
			match = true
		}
	}
	if !match {
		return ErrSignatureMismatch
	}
	return nil
}

// Sign returns the full header value (prefix + encoded MAC) for body, made
// with the first secret.
func (h *HMAC) Sign(body []byte) string {
	mac := h.mac(h.secrets[0], body)
	if h.base64 {
		return h.prefix + base64.StdEncoding.EncodeToString(mac)
	}
	return h.prefix + hex.EncodeToString(mac)
}

func (h *HMAC) mac(secret, body []byte) []byte {
	m := hmac.New(h.newHash, secret)
	m.Write(body)
	return m.Sum(nil)
}

func (h *HMAC) decode(s string) ([]byte, error) {
	if h.base64 {
		return base64.StdEncoding.DecodeString(s)
	}
	return hex.DecodeString(s)
}
