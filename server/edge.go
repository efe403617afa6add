package server

import (
	"bytes"
	"errors"
	"net"
	"slices"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"storegate"
)

// guard puts the edge in front of the app's routes. fasthttp refuses on its
// own the requests it cannot read (request line and headers over its read
// buffer, a body over the limit, a read timeout, bad syntax) through its
// Server.ErrorHandler; checkMessage refuses what it reads but a proxy in
// front could read otherwise. Both answer through refuse, so a refusal is an
// error answer like any other: JSON from errorHandler, a request id, a log
// line and a count, and nothing of the request echoed back.
func (s *Server) guard(app *fiber.App) {
	srv := app.Server()
	srv.ErrorHandler = s.refuse
	srv.SecureErrorLogMessage = true // fasthttp's errors never quote the request
	route := srv.Handler
	srv.Handler = func(fctx *fasthttp.RequestCtx) {
		if err := checkMessage(&fctx.Request.Header); err != nil {
			s.refuse(fctx, err)
			return
		}
		route(fctx)
	}
}

// refuse answers a request no route may see, then closes the connection:
// what follows on it cannot be trusted to start a request.
func (s *Server) refuse(fctx *fasthttp.RequestCtx, err error) {
	c := s.app.AcquireCtx(fctx)
	defer s.app.ReleaseCtx(c)
	fctx.SetConnectionClose()
	start := s.begin(c)
	_ = s.errorHandler(c, refusal(err)) // it only writes the answer
	// The method and the path are the caller's bytes, unchecked: not logged.
	s.finish(c, start, "", "", true)
}

// refusal names fasthttp's reason for refusing a request in the error
// vocabulary. fasthttp's own messages quote the request, headers included,
// so none of them is kept.
func refusal(err error) *storegate.Error {
	var e *storegate.Error
	var small *fasthttp.ErrSmallBuffer
	var nerr net.Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &small):
		return storegate.Errorf(storegate.CodeHeadersTooLarge, "the request line and headers are larger than %d bytes", readBuffer)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return storegate.Errorf(storegate.CodeTooLarge, "request body is larger than this route accepts")
	case errors.As(err, &nerr) && nerr.Timeout():
		return storegate.Errorf(storegate.CodeTimeout, "the request did not arrive within the read timeout")
	default:
		return storegate.Errorf(storegate.CodeMalformed, "malformed HTTP request")
	}
}

// readBuffer is fasthttp's read buffer (Fiber's default), which the request
// line and the headers must fit in together.
const readBuffer = 4096

var (
	errMethod = storegate.Errorf(storegate.CodeMalformed, "unsupported HTTP method")
	errFolded = storegate.Errorf(storegate.CodeMalformed, "header lines must not be folded")
	errFrame  = storegate.Errorf(storegate.CodeMalformed,
		"ambiguous request framing: send a single Content-Length, or the chunked transfer coding alone")
)

// checkMessage refuses what fasthttp accepts but a proxy in front may read
// otherwise (RFC 9112 §6.3, §5.2): a method Fiber does not route, folded
// header lines, and any framing but one Content-Length or a lone
// Transfer-Encoding: chunked on HTTP/1.1. fasthttp lets Transfer-Encoding win
// over Content-Length, the last of several Content-Lengths win, and reads
// "gzip, chunked" as chunked; a proxy that chose otherwise would see a
// second request hidden in this one's body.
func checkMessage(h *fasthttp.RequestHeader) error {
	if !slices.Contains(fiber.DefaultMethods, string(h.Method())) {
		return errMethod
	}
	var lengths, codings int
	var coding []byte
	for line := range bytes.SplitSeq(h.RawHeaders(), []byte("\n")) {
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			return errFolded
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		switch {
		case !ok:
		case bytes.EqualFold(name, []byte(fiber.HeaderContentLength)):
			lengths++
		case bytes.EqualFold(name, []byte(fiber.HeaderTransferEncoding)):
			codings++
			coding = bytes.TrimSpace(value)
		}
	}
	switch {
	case lengths > 1, lengths > 0 && codings > 0, codings > 1:
		return errFrame
	case codings == 1 && (!bytes.EqualFold(coding, []byte("chunked")) || !h.IsHTTP11()):
		return errFrame
	}
	return nil
}
