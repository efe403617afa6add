package signing

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
)

const (
	xsollaHeader = "Authorization"
	xsollaScheme = "Signature "
)

// Xsolla verifies Xsolla webhooks: "Authorization: Signature <hex>", where hex
// is the lowercase hex of SHA-1(raw body bytes || secret). This is plain SHA-1
// with the secret appended, not HMAC, because that is what Xsolla sends.
type Xsolla struct {
	secrets [][]byte
}

// NewXsolla returns a verifier that accepts a signature made with any of the
// given secrets (several secrets allow rotation). It returns an error wrapping
// ErrNoSecret when no secret is given or one of them is empty.
func NewXsolla(secrets ...string) (*Xsolla, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	x := &Xsolla{secrets: make([][]byte, len(secrets))}
	for i, s := range secrets {
		if s == "" {
			// The index, never the value: errors must not carry secrets.
			return nil, fmt.Errorf("%w: xsolla secret %d is empty", ErrNoSecret, i)
		}
		x.secrets[i] = []byte(s)
	}
	return x, nil
}

// Verify checks the Authorization header against body. The header must be
// exactly "Signature " followed by 40 lowercase hex characters, as Xsolla's
// own SDK requires; anything else is ErrMalformedSignature.
func (x *Xsolla) Verify(header func(string) string, body []byte) error {
	v := header(xsollaHeader)
	if v == "" {
		return ErrMissingSignature
	}
	got, ok := parseXsolla(v)
	if !ok {
		return ErrMalformedSignature
	}
	// Check every secret without stopping at the first match, so the time taken
	// does not say which secret (old or new) signed the request.
	match := 0
	for _, s := range x.secrets {
		want := xsollaSum(body, s)
		match |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	if match != 1 {
		return ErrSignatureMismatch
	}
	return nil
}

// XsollaSignature returns the full Authorization header value,
// "Signature <40 lowercase hex>", for body signed with secret.
func XsollaSignature(body []byte, secret string) string {
	sum := xsollaSum(body, []byte(secret))
	return xsollaScheme + hex.EncodeToString(sum[:])
}

func xsollaSum(body, secret []byte) [sha1.Size]byte {
	h := sha1.New()
	h.Write(body)
	h.Write(secret)
	var out [sha1.Size]byte
	h.Sum(out[:0])
	return out
}

// parseXsolla decodes "Signature <40 lowercase hex>". Uppercase hex is
// rejected on purpose: Xsolla never sends it and its SDK refuses it, so
// accepting it would only widen what a forger may try.
func parseXsolla(v string) (sum [sha1.Size]byte, ok bool) {
	if len(v) != len(xsollaScheme)+2*sha1.Size || v[:len(xsollaScheme)] != xsollaScheme {
		return sum, false
	}
	h := v[len(xsollaScheme):]
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return sum, false
		}
	}
	if _, err := hex.Decode(sum[:], []byte(h)); err != nil {
		return sum, false
	}
	return sum, true
}
