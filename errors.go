package storegate

import (
	"errors"
	"fmt"
	"time"
)

// Code is the gateway's error vocabulary. Codes are part of the public surface:
// they appear in every error answer as {"error":{"code":...}}. The Xsolla
// codes keep Xsolla's spelling because Xsolla reads them.
type Code string

const (
	CodeInvalidParameter  Code = "INVALID_PARAMETER"      // malformed or schema-violating input
	CodeInvalidSignature  Code = "INVALID_SIGNATURE"      // signature missing or wrong
	CodeInvalidUser       Code = "INVALID_USER"           // the player does not exist
	CodeInvalidClientIP   Code = "INVALID_CLIENT_IP"      // caller outside the source's allowlist
	CodeIncorrectAmount   Code = "INCORRECT_AMOUNT"       // amount or currency differ from the order
	CodeUnauthorized      Code = "UNAUTHORIZED"           // missing or wrong bearer token
	CodeForbidden         Code = "FORBIDDEN"              // authenticated but not allowed
	CodeNotFound          Code = "NOT_FOUND"              // unknown source, player, order, route
	CodeConflict          Code = "CONFLICT"               // the state forbids the request (already paid, ...)
	CodeTooLarge          Code = "PAYLOAD_TOO_LARGE"      // body over the route's limit
	CodeHeadersTooLarge   Code = "HEADERS_TOO_LARGE"      // request line and headers over the read buffer
	CodeMalformed         Code = "MALFORMED_REQUEST"      // not a well-formed, unambiguous HTTP/1.1 request
	CodeTimeout           Code = "REQUEST_TIMEOUT"        // the request did not arrive within the read timeout
	CodeUnsupportedMedia  Code = "UNSUPPORTED_MEDIA_TYPE" // body is not application/json
	CodeInsufficientFunds Code = "INSUFFICIENT_FUNDS"     // a spend the wallet cannot cover
	CodeOutOfStock        Code = "OUT_OF_STOCK"           // no unused game key left for a SKU
	CodeTooManyRequests   Code = "TOO_MANY_REQUESTS"      // too many attempts (console sign-ins); wait and retry
	CodeUnavailable       Code = "SERVICE_UNAVAILABLE"    // cannot take responsibility now; retry
	CodeInternal          Code = "SERVER_ERROR"           // a bug or an unexpected failure
)

// Error is the one error type that crosses package boundaries towards a
// caller. Message is safe to show to the caller; internal causes go in Err and
// are only logged.
type Error struct {
	Code    Code
	Message string
	// Fields names the input fields at fault, as JSON paths ("items.0.sku").
	Fields []string
	// Err is the internal cause, never shown to the caller.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an INVALID_PARAMETER error naming the fields at fault
// (empty names are left out: the fault is the whole body).
func FieldError(message string, fields ...string) *Error {
	var named []string
	for _, f := range fields {
		if f != "" {
			named = append(named, f)
		}
	}
	return &Error{Code: CodeInvalidParameter, Message: message, Fields: named}
}

// Internal wraps an unexpected failure. The caller sees only "internal error".
func Internal(err error) *Error {
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}

// Unavailable wraps a failure that should make the sender retry later.
func Unavailable(err error) *Error {
	return &Error{Code: CodeUnavailable, Message: "temporarily unable to accept this request, retry later", Err: err}
}

// ErrorCode returns the code of err, or CodeInternal for errors that are not
// *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// UnavailableError says a remote dependency is known to be down (its
// breaker is open), so no call was made: ask again after RetryAfter.
type UnavailableError struct {
	Dependency string
	RetryAfter time.Duration
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%s is unavailable (breaker open); ask again in %v", e.Dependency, e.RetryAfter)
}
