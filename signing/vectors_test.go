package signing_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"storegate/signing"
)

// vectorsPath is the public vector file, kept in the repository so a fresh
// clone tests and fuzzes on its own.
const vectorsPath = "testdata/signing-vectors.json"

type vectors struct {
	About            string      `json:"about"`
	Standard         []swVector  `json:"standard_webhooks"`
	StandardMustFail []swVariant `json:"standard_webhooks_must_fail"`
	StandardMustPass []swVariant `json:"standard_webhooks_must_pass"`
	Xsolla           []xsVector  `json:"xsolla"`
	XsollaMustFail   []xsVector  `json:"xsolla_must_fail"`
}

type swVector struct {
	Name      string `json:"name"`
	Secret    string `json:"secret"`
	ID        string `json:"id"`
	Timestamp int64  `json:"timestamp"`
	Body      string `json:"body"`
	Signature string `json:"signature"`
}

// swVariant is a swVector with some fields replaced.
type swVariant struct {
	Like            string `json:"like"`
	Signature       string `json:"signature"`
	TimestampOffset *int64 `json:"timestamp_offset_seconds"`
	Why             string `json:"why"`
}

type xsVector struct {
	Secret        string `json:"secret"`
	Body          string `json:"body"`
	Authorization string `json:"authorization"`
	Why           string `json:"why"`
}

// loadVectors fails the test, never skips it: a missing or renamed vector
// file must not turn into a silently green run.
func loadVectors(tb testing.TB) vectors {
	tb.Helper()
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		tb.Fatalf("reading signing vectors: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	// An unknown section would be a set of cases nobody checks.
	dec.DisallowUnknownFields()
	var v vectors
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("decoding %s: %v", vectorsPath, err)
	}
	for name, n := range map[string]int{
		"standard_webhooks":           len(v.Standard),
		"standard_webhooks_must_fail": len(v.StandardMustFail),
		"standard_webhooks_must_pass": len(v.StandardMustPass),
		"xsolla":                      len(v.Xsolla),
		"xsolla_must_fail":            len(v.XsollaMustFail),
	} {
		if n == 0 {
			tb.Fatalf("%s: section %q is empty or missing", vectorsPath, name)
		}
	}
	return v
}

func (v vectors) like(tb testing.TB, name string) swVector {
	tb.Helper()
	for _, sw := range v.Standard {
		if sw.Name == name {
			return sw
		}
	}
	tb.Fatalf("no standard_webhooks vector named %q", name)
	return swVector{}
}

// headers returns a case-insensitive header lookup, as an HTTP framework gives.
func headers(kv ...string) func(string) string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[strings.ToLower(kv[i])] = kv[i+1]
	}
	return func(name string) string { return m[strings.ToLower(name)] }
}

func fixedClock(unix int64) func() time.Time {
	return func() time.Time { return time.Unix(unix, 0) }
}

func swHeaders(sw swVector, signature string) func(string) string {
	return headers(
		"webhook-id", sw.ID,
		"webhook-timestamp", itoa(sw.Timestamp),
		"webhook-signature", signature,
	)
}

// xsollaFormat is the Xsolla SDK's header pattern, written independently of
// the package so the expected sentinel is not derived from the code under test.
var xsollaFormat = regexp.MustCompile(`^Signature [0-9a-f]{40}$`)

func TestVectors_Xsolla(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Xsolla {
		t.Run(tc.Body, func(t *testing.T) {
			x, err := signing.NewXsolla(tc.Secret)
			if err != nil {
				t.Fatal(err)
			}
			if err := x.Verify(headers("Authorization", tc.Authorization), []byte(tc.Body)); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if got, want := signing.XsollaSignature([]byte(tc.Body), tc.Secret), tc.Authorization; got != want {
				t.Errorf("XsollaSignature = %q, want %q", got, want)
			}
		})
	}
}

func TestVectors_XsollaMustFail(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.XsollaMustFail {
		t.Run(tc.Why, func(t *testing.T) {
			x, err := signing.NewXsolla(tc.Secret)
			if err != nil {
				t.Fatal(err)
			}
			want := signing.ErrMalformedSignature
			if xsollaFormat.MatchString(tc.Authorization) {
				want = signing.ErrSignatureMismatch
			}
			if got := x.Verify(headers("Authorization", tc.Authorization), []byte(tc.Body)); !errors.Is(got, want) {
				t.Errorf("Verify = %v, want %v", got, want)
			}
		})
	}
}

func TestVectors_Standard(t *testing.T) {
	v := loadVectors(t)
	for _, sw := range v.Standard {
		t.Run(sw.Name, func(t *testing.T) {
			s, err := signing.NewStandard([]string{sw.Secret}, signing.StandardConfig{Now: fixedClock(sw.Timestamp)})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(swHeaders(sw, sw.Signature), []byte(sw.Body)); err != nil {
				t.Errorf("Verify: %v", err)
			}
			got, err := signing.SignStandard(sw.Secret, sw.ID, sw.Timestamp, []byte(sw.Body))
			if err != nil {
				t.Fatal(err)
			}
			if want := sw.Signature; got != want {
				t.Errorf("SignStandard = %q, want %q", got, want)
			}
		})
	}
}

func TestVectors_StandardMustFail(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.StandardMustFail {
		sw := v.like(t, tc.Like)
		sig := sw.Signature
		if tc.Signature != "" {
			sig = tc.Signature
		}
		offsets := []int64{0}
		want := signing.ErrSignatureMismatch
		if tc.TimestampOffset != nil {
			// Out of the window on either side of the clock.
			offsets = []int64{*tc.TimestampOffset, -*tc.TimestampOffset}
			want = signing.ErrTimestampOutOfRange
		}
		for _, off := range offsets {
			t.Run(tc.Why+"/offset="+itoa(off), func(t *testing.T) {
				s, err := signing.NewStandard([]string{sw.Secret}, signing.StandardConfig{Now: fixedClock(sw.Timestamp + off)})
				if err != nil {
					t.Fatal(err)
				}
				if got := s.Verify(swHeaders(sw, sig), []byte(sw.Body)); !errors.Is(got, want) {
					t.Errorf("Verify = %v, want %v", got, want)
				}
			})
		}
	}
}

func TestVectors_StandardMustPass(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.StandardMustPass {
		t.Run(tc.Why, func(t *testing.T) {
			sw := v.like(t, tc.Like)
			sig := sw.Signature
			if tc.Signature != "" {
				sig = tc.Signature
			}
			now := sw.Timestamp
			if tc.TimestampOffset != nil {
				now += *tc.TimestampOffset
			}
			s, err := signing.NewStandard([]string{sw.Secret}, signing.StandardConfig{Now: fixedClock(now)})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(swHeaders(sw, sig), []byte(sw.Body)); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}
