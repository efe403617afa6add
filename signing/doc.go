// Package signing verifies the signatures on inbound webhooks and signs
// outbound ones. It is pure: it sees header values and raw body bytes, never an
// HTTP framework, so every scheme can be tested against published vectors.
//
// Three schemes are provided, each validated when it is constructed and safe
// for concurrent use afterwards (a verifier is never modified after its
// constructor returns):
//
//   - Xsolla: SHA-1 of the body followed by the project secret.
//   - Standard: Standard Webhooks v1, HMAC-SHA256 with a timestamp window.
//   - HMAC: a generic HMAC over the raw body, in the shapes Convoy or GitHub use.
//
// Every scheme accepts several secrets so that a secret can be rotated without
// downtime. Every comparison of a MAC is constant-time, and no error returned
// here ever contains a secret or an expected MAC: callers may log them.
package signing

import "errors"

// Verifier checks one request. header returns a request header value by
// (case-insensitive) name, "" when absent.
type Verifier interface {
	Verify(header func(name string) string, body []byte) error
}

// The errors returned by Verify. Callers map all of them to 401; they differ
// only so that logs and metrics can tell a forgery from a broken sender.
var (
	ErrMissingSignature    = errors.New("signing: signature header missing")
	ErrMalformedSignature  = errors.New("signing: signature header malformed")
	ErrSignatureMismatch   = errors.New("signing: signature mismatch")
	ErrTimestampOutOfRange = errors.New("signing: timestamp outside tolerance")
	ErrNoSecret            = errors.New("signing: no secret configured")
)

var (
	_ Verifier = (*Xsolla)(nil)
	_ Verifier = (*Standard)(nil)
	_ Verifier = (*HMAC)(nil)
)
