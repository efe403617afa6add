package webhooks

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/server"
	"storegate/signing"
)

// Verifier checks a signature over a request's raw body.
type Verifier interface {
	Verify(header func(string) string, body []byte) error
}

// Source is one configured sender, whatever its kind: what every sender's
// request is admitted by. XsollaSource, PartnerSource and StoresSource add
// what their kind needs beyond it.
type Source struct {
	Name string
	// Target receives the source's commands and user checks.
	Target string
	// AllowIPs limits callers; empty allows any address, except for a
	// partner, whose registered addresses are required.
	AllowIPs []netip.Prefix
	// BodyLimit caps the body in bytes; 0 uses the server's limit.
	BodyLimit int
	// Verifier checks the signature over the raw body. Required, except for
	// a partner authenticating with HTTP Basic (PartnerSource.BasicKeys).
	Verifier Verifier
	// Receipts is the target that e-mails buyers their receipts, for the
	// kinds whose paid orders name the buyer's address (xsolla, partner).
	// Empty: no receipts.
	Receipts string

	kind  *kind
	basic [][32]byte // sha256 of each HTTP Basic password
}

func (s *Source) source() *Source { return s }

// kind is what one kind of sender's admission differs in.
type kind struct {
	// statuses override the one mapping of codes to statuses where the
	// kind's contract differs from it.
	statuses map[storegate.Code]int
	// registered refuses every caller of a source without an allowlist.
	registered bool
	// json checks the content type on admission; a kind whose routes
	// include lookups without a body leaves it to server.Decode.
	json bool
	// problem says what is wrong with a signature, echoing nothing the
	// caller sent.
	problem func(error) string
}

// prepare readies a configured source for admission as one of kind k.
func (s *Source) prepare(srv *server.Server, k *kind) {
	s.BodyLimit = srv.SourceLimit(s.BodyLimit)
	s.kind = k
}

// admit is the one way into every sender's route. It finds the route's
// source and runs the checks in this order, each refusing with nothing
// stored: the source (404), the caller's address (403), the body's size
// (413), the signature, or a partner's HTTP Basic key (401), and the content
// type (415). The handler then reads the body against its schema. typ, when
// set, names the request in its log line and metric.
func admit[S interface{ source() *Source }](h *handlers, c *fiber.Ctx, sources map[string]S, typ string) (S, error) {
	found, ok := sources[c.Params("source")]
	if !ok {
		return found, storegate.Errorf(storegate.CodeNotFound, "unknown source")
	}
	src := found.source()
	if typ != "" {
		server.SetType(c, typ)
	}
	server.SetSource(c, src.Name)
	if src.kind.statuses != nil {
		server.SetStatuses(c, src.kind.statuses)
	}
	if err := h.checkCaller(c, src); err != nil {
		return found, err
	}
	if err := h.authenticate(c, src); err != nil {
		return found, err
	}
	if src.kind.json && !server.IsJSON(c.Get(fiber.HeaderContentType)) {
		return found, server.ErrNotJSON
	}
	return found, nil
}

// checkCaller refuses a caller outside the source's allowlist, and a body
// over its limit.
func (h *handlers) checkCaller(c *fiber.Ctx, src *Source) error {
	if src.kind.registered && len(src.AllowIPs) == 0 {
		return storegate.Errorf(storegate.CodeInvalidClientIP, "caller address is not registered for this partner")
	}
	if !server.Allowed(src.AllowIPs, h.srv.ClientIP(c)) {
		return storegate.Errorf(storegate.CodeInvalidClientIP, "caller address is not allowed for this source")
	}
	if len(c.BodyRaw()) > src.BodyLimit {
		return storegate.Errorf(storegate.CodeTooLarge, "request body is larger than %d bytes", src.BodyLimit)
	}
	return nil
}

// authenticate checks the signature over the raw body or, for a source
// without a verifier, HTTP Basic credentials. A failure is counted.
func (h *handlers) authenticate(c *fiber.Ctx, src *Source) error {
	if src.Verifier != nil {
		err := src.Verifier.Verify(header(c), c.BodyRaw())
		if err == nil {
			return nil
		}
		h.signatureFailed(src.Name)
		return storegate.Errorf(storegate.CodeInvalidSignature, "%s", src.kind.problem(err))
	}
	if checkBasic(c.Get(fiber.HeaderAuthorization), src.Name, src.basic) {
		return nil
	}
	h.signatureFailed(src.Name)
	c.Set(fiber.HeaderWWWAuthenticate, `Basic realm="storegate-partner"`)
	return storegate.Errorf(storegate.CodeUnauthorized, "partner routes need HTTP Basic <source name>:<partner key>")
}

func (h *handlers) signatureFailed(source string) {
	if h.metrics != nil {
		h.metrics.SignatureFailure(source)
	}
}

// standardProblem says what is wrong with a Standard Webhooks signature,
// without echoing anything the caller sent.
func standardProblem(err error) string {
	switch {
	case errors.Is(err, signing.ErrMissingSignature):
		return "webhook-id, webhook-timestamp and webhook-signature headers are required"
	case errors.Is(err, signing.ErrMalformedSignature):
		return "webhook-timestamp or webhook-id is malformed"
	case errors.Is(err, signing.ErrTimestampOutOfRange):
		return "webhook-timestamp is too far from now"
	}
	return "signature does not match the body"
}

// checkBasic compares HTTP Basic credentials in constant time: the user must
// be the source's name and the password one of its keys.
func checkBasic(header, user string, keys [][32]byte) bool {
	raw, ok := strings.CutPrefix(header, "Basic ")
	if !ok {
		return false
	}
	decoded, err := base64.StdEncoding.DecodeString(strings.TrimSpace(raw))
	if err != nil {
		return false
	}
	name, password, ok := strings.Cut(string(decoded), ":")
	if !ok {
		return false
	}
	nameOK := subtle.ConstantTimeCompare([]byte(name), []byte(user))
	return server.CheckBearer("Bearer "+password, keys) && nameOK == 1
}

// header adapts Fiber's header lookup to the signing package's.
func header(c *fiber.Ctx) func(string) string {
	return func(name string) string { return c.Get(name) }
}
