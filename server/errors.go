package server

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"storegate"
)

// statusOf is the one mapping from the error vocabulary to HTTP. Xsolla
// refunds the player on 400, 401, 402, 403, 404, 409, 415 and 422 when
// automatic refunds are on, so those answer only permanent rejects; anything
// the gateway cannot take responsibility for is a 5xx so the sender retries.
var statusOf = map[storegate.Code]int{
	storegate.CodeInvalidParameter:  fiber.StatusBadRequest,
	storegate.CodeInvalidSignature:  fiber.StatusUnauthorized,
	storegate.CodeInvalidUser:       fiber.StatusBadRequest,
	storegate.CodeInvalidClientIP:   fiber.StatusForbidden,
	storegate.CodeIncorrectAmount:   fiber.StatusUnprocessableEntity,
	storegate.CodeUnauthorized:      fiber.StatusUnauthorized,
	storegate.CodeForbidden:         fiber.StatusForbidden,
	storegate.CodeNotFound:          fiber.StatusNotFound,
	storegate.CodeConflict:          fiber.StatusConflict,
	storegate.CodeTooLarge:          fiber.StatusRequestEntityTooLarge,
	storegate.CodeHeadersTooLarge:   fiber.StatusRequestHeaderFieldsTooLarge,
	storegate.CodeMalformed:         fiber.StatusBadRequest,
	storegate.CodeTimeout:           fiber.StatusRequestTimeout,
	storegate.CodeUnsupportedMedia:  fiber.StatusUnsupportedMediaType,
	storegate.CodeInsufficientFunds: fiber.StatusConflict,
	storegate.CodeOutOfStock:        fiber.StatusConflict,
	storegate.CodeTooManyRequests:   fiber.StatusTooManyRequests,
	storegate.CodeUnavailable:       fiber.StatusServiceUnavailable,
	storegate.CodeInternal:          fiber.StatusInternalServerError,
}

// fiberErrors maps Fiber's own errors (an unknown route) to the
// vocabulary, with messages of our own: Fiber's quote the request.
var fiberErrors = map[int]*storegate.Error{
	fiber.StatusNotFound:              {Code: storegate.CodeNotFound, Message: "no such route"},
	fiber.StatusMethodNotAllowed:      {Code: storegate.CodeNotFound, Message: "no such route"},
	fiber.StatusRequestEntityTooLarge: {Code: storegate.CodeTooLarge, Message: "request body is larger than this route accepts"},
	fiber.StatusBadRequest:            {Code: storegate.CodeMalformed, Message: "malformed request"},
	fiber.StatusUnsupportedMediaType:  {Code: storegate.CodeUnsupportedMedia, Message: "Content-Type must be application/json"},
}

// retryAfter is the Retry-After of every 503, in seconds: what a sender
// that honours it waits before trying again.
const retryAfter = "5"

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    storegate.Code `json:"code"`
	Message string         `json:"message"`
	Fields  []string       `json:"fields,omitempty"`
}

// errorHandler replaces Fiber's default, which would echo internal error
// text to the caller. It writes {"error":{"code","message","fields"}} and logs
// internal causes with the request id; the caller never sees them.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	var e *storegate.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &e):
	case errors.As(err, &fe):
		if e = fiberErrors[fe.Code]; e == nil {
			e = storegate.Internal(err)
		}
	default:
		e = storegate.Internal(err)
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = fiber.StatusInternalServerError
	}
	over, _ := c.Locals(localStatuses).(map[storegate.Code]int)
	if st, ok := over[e.Code]; ok {
		status = st
	}
	if status >= 500 {
		s.log.Error("request failed", "request_id", RequestID(c), "path", c.Route().Path, "code", e.Code, "err", e.Err)
	}
	if status == fiber.StatusServiceUnavailable {
		c.Set(fiber.HeaderRetryAfter, retryAfter)
	}
	if page, ok := c.Locals(localErrorPage).(ErrorPage); ok {
		return page(c.Status(status), e)
	}
	return c.Status(status).JSON(errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Fields: e.Fields}})
}

// ErrorPage writes an error answer as a page, for routes people read in a
// browser. The status is already set; e.Message is safe to show.
type ErrorPage func(c *fiber.Ctx, e *storegate.Error) error

// SetErrorPage makes the request's errors answer through page instead of
// JSON, after the one mapping above chose their status.
func SetErrorPage(c *fiber.Ctx, page ErrorPage) { c.Locals(localErrorPage, page) }
