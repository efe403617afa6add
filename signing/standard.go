package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const (
	// Header names, lowercase as the specification writes them.
	headerWebhookID        = "webhook-id"
	headerWebhookTimestamp = "webhook-timestamp"
	headerWebhookSignature = "webhook-signature"

	standardSecretPrefix = "whsec_"
	standardVersion      = "v1"
	// defaultTolerance is the reference libraries' window.
	defaultTolerance = 5 * time.Minute
)

// StandardConfig configures a Standard verifier.
type StandardConfig struct {
	// Tolerance is how far webhook-timestamp may be from Now, either way. Default 5m.
	Tolerance time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Standard verifies Standard Webhooks v1 signatures
// (https://www.standardwebhooks.com): HMAC-SHA256 over "{id}.{timestamp}.{body}",
// keyed with the base64-decoded secret, sent as "v1,<base64>" entries in the
// space-delimited webhook-signature header.
type Standard struct {
	keys      [][]byte
	tolerance time.Duration
	now       func() time.Time
}

// NewStandard returns a verifier that accepts a signature made with any of the
// given secrets (several secrets allow rotation). Secrets may carry the
// "whsec_" prefix or not; an empty or non-base64 secret is an error.
func NewStandard(secrets []string, cfg StandardConfig) (*Standard, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	if cfg.Tolerance < 0 {
		return nil, errors.New("signing: negative timestamp tolerance")
	}
	s := &Standard{
		keys:      make([][]byte, len(secrets)),
		tolerance: cfg.Tolerance,
		now:       cfg.Now,
	}
	if s.tolerance == 0 {
		s.tolerance = defaultTolerance
	}
	if s.now == nil {
		s.now = time.Now
	}
	for i, secret := range secrets {
		key, err := standardKey(secret)
		if err != nil {
			// The index, never the value: errors must not carry secrets.
			return nil, fmt.Errorf("%w (secret %d)", err, i)
		}
		s.keys[i] = key
	}
	return s, nil
}

// Verify checks the three Standard Webhooks headers against body. A missing
// header is ErrMissingSignature; a timestamp that is not a decimal integer, or
// an id containing '.', is ErrMalformedSignature; a timestamp outside the
// tolerance is ErrTimestampOutOfRange, checked before the MAC so that stale
// replays are reported as such. Entries with versions other than v1 are ignored.
func (s *Standard) Verify(header func(string) string, body []byte) error {
	id := header(headerWebhookID)
	tsv := header(headerWebhookTimestamp)
	sigs := header(headerWebhookSignature)
	if id == "" || tsv == "" || sigs == "" {
		return ErrMissingSignature
	}
	ts, ok := parseTimestamp(tsv)
	if !ok || strings.Contains(id, ".") {
		return ErrMalformedSignature
	}
	if !withinTolerance(ts, s.now(), s.tolerance) {
		return ErrTimestampOutOfRange
	}

	wants := make([][]byte, len(s.keys))
	for i, key := range s.keys {
		wants[i] = []byte(standardVersion + "," + standardMAC(key, id, ts, body))
	}
	// Compare every entry with every key and never stop early, so timing says
	// neither which entry nor which secret matched.
	match := 0
	for _, entry := range strings.Fields(sigs) {
		version, _, found := strings.Cut(entry, ",")
		if !found || version != standardVersion {
			continue // Unknown versions are ignored, as the specification requires.
		}
		for _, want := range wants {
			// hmac.Equal is constant-time for equal lengths; the length of a
			// valid signature is public.
			if hmac.Equal([]byte(entry), want) {
				match = 1
			}
		}
	}
	if match != 1 {
		return ErrSignatureMismatch
	}
	return nil
}

// SignStandard returns the webhook-signature value ("v1,<b64>") for one secret.
func SignStandard(secret, id string, timestamp int64, body []byte) (string, error) {
	key, err := standardKey(secret)
	if err != nil {
		return "", err
	}
	if err := checkID(id); err != nil {
		return "", err
	}
	return standardVersion + "," + standardMAC(key, id, timestamp, body), nil
}

// StandardHeaders returns the three headers (names lowercase) signed with every
// given secret (space-separated v1 entries), for outbound calls. Signing with
// every secret lets a receiver that knows only the old or only the new secret
// accept the call during a rotation.
func StandardHeaders(secrets []string, id string, timestamp int64, body []byte) (map[string]string, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	sigs := make([]string, len(secrets))
	for i, secret := range secrets {
		key, err := standardKey(secret)
		if err != nil {
			return nil, fmt.Errorf("%w (secret %d)", err, i)
		}
		sigs[i] = standardVersion + "," + standardMAC(key, id, timestamp, body)
	}
	return map[string]string{
		headerWebhookID:        id,
		headerWebhookTimestamp: strconv.FormatInt(timestamp, 10),
		headerWebhookSignature: strings.Join(sigs, " "),
	}, nil
}

// standardKey decodes a secret given with or without the "whsec_" prefix.
// Unpadded base64 is accepted too, since some providers strip the padding.
func standardKey(secret string) ([]byte, error) {
	b64 := strings.TrimPrefix(secret, standardSecretPrefix)
	if b64 == "" {
		return nil, ErrNoSecret
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(b64)
	}
	if err != nil || len(key) == 0 {
		// Not the decoder's error: it quotes an offset into the secret.
		return nil, errors.New("signing: standard webhooks secret is not valid base64")
	}
	return key, nil
}

// checkID refuses an empty id or one containing '.', the separator of the
// signed content: "{id}.{timestamp}.{body}" would otherwise be ambiguous.
func checkID(id string) error {
	if id == "" || strings.Contains(id, ".") {
		return errors.New("signing: webhook id must be non-empty and contain no '.'")
	}
	return nil
}

// standardMAC returns the base64 HMAC-SHA256 of "{id}.{timestamp}.{body}". The
// timestamp is re-formatted from its parsed value so the bytes that are
// authenticated are exactly the instant that is checked against the clock.
func standardMAC(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	var buf [20]byte
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(buf[:0], timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	var sum [sha256.Size]byte
	return base64.StdEncoding.EncodeToString(m.Sum(sum[:0]))
}

// parseTimestamp accepts unix seconds written as ASCII digits only: no sign,
// no spaces, no fraction.
func parseTimestamp(v string) (int64, bool) {
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	ts, err := strconv.ParseInt(v, 10, 64)
	return ts, err == nil
}

// withinTolerance reports whether |now - ts| <= tol. It first compares whole
// seconds with saturating arithmetic, so a huge timestamp cannot overflow,
// then compares exactly with time.Duration.
func withinTolerance(ts int64, now time.Time, tol time.Duration) bool {
	slack := int64(tol/time.Second) + 1
	n := now.Unix()
	if ts > satAdd(n, slack) || ts < satAdd(n, -slack) {
		return false
	}
	d := now.Sub(time.Unix(ts, 0))
	return d <= tol && d >= -tol
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	if b < 0 && a < math.MinInt64-b {
		return math.MinInt64
	}
	return a + b
}
