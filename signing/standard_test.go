package signing_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"storegate/signing"
)

// Secrets of 24 random-looking bytes, in the whsec_ form.
const (
	swOld = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swNew = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

// standardIndependent computes a v1 entry with crypto/hmac directly.
func standardIndependent(t testing.TB, secret, id string, ts int64, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + itoa(ts) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestNewStandard(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secrets []string
		cfg     signing.StandardConfig
		ok      bool
		wantErr error // checked with errors.Is when set
	}{
		{"OK", []string{swOld}, signing.StandardConfig{}, true, nil},
		{"OKBare", []string{strings.TrimPrefix(swOld, "whsec_")}, signing.StandardConfig{}, true, nil},
		{"OKUnpadded", []string{"whsec_YWJjZA"}, signing.StandardConfig{}, true, nil},
		{"ErrNone", nil, signing.StandardConfig{}, false, signing.ErrNoSecret},
		{"ErrEmpty", []string{""}, signing.StandardConfig{}, false, signing.ErrNoSecret},
		{"ErrPrefixOnly", []string{"whsec_"}, signing.StandardConfig{}, false, signing.ErrNoSecret},
		{"ErrOneEmpty", []string{swOld, ""}, signing.StandardConfig{}, false, signing.ErrNoSecret},
		{"ErrNotBase64", []string{"whsec_not base64!"}, signing.StandardConfig{}, false, nil},
		{"ErrNegativeTolerance", []string{swOld}, signing.StandardConfig{Tolerance: -time.Second}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := signing.NewStandard(tc.secrets, tc.cfg)
			if got, want := err == nil, tc.ok; got != want {
				t.Fatalf("NewStandard error = %v, want ok=%v", err, want)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("NewStandard error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				assertNoLeak(t, err, tc.secrets...)
			}
			if got, want := s != nil, tc.ok; got != want {
				t.Errorf("NewStandard returned %v, want non-nil=%v", s, want)
			}
		})
	}
}

func TestStandard_Verify(t *testing.T) {
	const (
		id  = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
		now = int64(1700000000)
	)
	body := []byte(`{"type":"order.paid","data":{"id":"o-1"}}`)
	signedOld := standardIndependent(t, swOld, id, now, body)
	signedNew := standardIndependent(t, swNew, id, now, body)
	s, err := signing.NewStandard([]string{swOld, swNew}, signing.StandardConfig{Now: fixedClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	h := func(id, ts, sig string) func(string) string {
		return headers("webhook-id", id, "webhook-timestamp", ts, "webhook-signature", sig)
	}
	ts := itoa(now)
	for _, tc := range []verifyCase{
		{"OKFirstSecret", h(id, ts, signedOld), body, nil},
		{"OKSecondSecret", h(id, ts, signedNew), body, nil},
		{"OKAmongOthers", h(id, ts, "v2,abc v1,AAAA "+signedNew+" v1a,xyz"), body, nil},
		{"OKExtraSpaces", h(id, ts, "  "+signedNew+"   v1,AAAA "), body, nil},
		{"OKCanonicalHeaderNames", headers("Webhook-Id", id, "Webhook-Timestamp", ts, "Webhook-Signature", signedNew), body, nil},
		{"ErrMissingID", h("", ts, signedNew), body, signing.ErrMissingSignature},
		{"ErrMissingTimestamp", h(id, "", signedNew), body, signing.ErrMissingSignature},
		{"ErrMissingSignature", h(id, ts, ""), body, signing.ErrMissingSignature},
		{"ErrNoHeaders", headers(), body, signing.ErrMissingSignature},
		{"ErrTimestampNotNumber", h(id, "yesterday", signedNew), body, signing.ErrMalformedSignature},
		{"ErrTimestampFraction", h(id, ts+".5", signedNew), body, signing.ErrMalformedSignature},
		{"ErrTimestampSign", h(id, "+"+ts, signedNew), body, signing.ErrMalformedSignature},
		{"ErrTimestampSpace", h(id, " "+ts, signedNew), body, signing.ErrMalformedSignature},
		{"ErrTimestampOverflow", h(id, "99999999999999999999", signedNew), body, signing.ErrMalformedSignature},
		{"ErrTimestampHuge", h(id, "9223372036854775807", signedNew), body, signing.ErrTimestampOutOfRange},
		{"ErrTimestampZero", h(id, "0", signedNew), body, signing.ErrTimestampOutOfRange},
		{"ErrIDWithDot", h(id+".1", ts, signedNew), body, signing.ErrMalformedSignature},
		{"ErrOnlyOtherVersions", h(id, ts, "v2,"+strings.TrimPrefix(signedNew, "v1,")), body, signing.ErrSignatureMismatch},
		{"ErrNoComma", h(id, ts, strings.TrimPrefix(signedNew, "v1,")), body, signing.ErrSignatureMismatch},
		{"ErrOtherID", h("msg_other", ts, signedNew), body, signing.ErrSignatureMismatch},
		{"ErrBodyChanged", h(id, ts, signedNew), append(body, '\n'), signing.ErrSignatureMismatch},
		{"ErrUnknownSecret", h(id, ts, standardIndependent(t, "whsec_"+base64.StdEncoding.EncodeToString([]byte("another-secret-key-bytes")), id, now, body)), body, signing.ErrSignatureMismatch},
		{"ErrTruncated", h(id, ts, signedNew[:len(signedNew)-8]), body, signing.ErrSignatureMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Verify(tc.header, tc.body)
			if got, want := err, tc.want; !errors.Is(got, want) {
				t.Errorf("Verify = %v, want %v", got, want)
			}
			if err != nil {
				assertNoLeak(t, err, swOld, swNew, strings.TrimPrefix(signedNew, "v1,"))
			}
		})
	}
}

func TestStandard_Tolerance(t *testing.T) {
	const id, ts = "msg_1", int64(1700000000)
	body := []byte("{}")
	sig := standardIndependent(t, swOld, id, ts, body)
	hdr := headers("webhook-id", id, "webhook-timestamp", itoa(ts), "webhook-signature", sig)
	for _, tc := range []struct {
		name      string
		tolerance time.Duration
		now       time.Time
		want      error
	}{
		{"OKExact", 0, time.Unix(ts, 0), nil},
		{"OKDefaultPastEdge", 0, time.Unix(ts+300, 0), nil},
		{"OKDefaultFutureEdge", 0, time.Unix(ts-300, 0), nil},
		{"ErrDefaultPast", 0, time.Unix(ts+301, 0), signing.ErrTimestampOutOfRange},
		{"ErrDefaultFuture", 0, time.Unix(ts-301, 0), signing.ErrTimestampOutOfRange},
		{"ErrDefaultPastSubsecond", 0, time.Unix(ts+300, 1), signing.ErrTimestampOutOfRange},
		{"OKCustom", time.Hour, time.Unix(ts+3600, 0), nil},
		{"ErrCustom", 10 * time.Second, time.Unix(ts-11, 0), signing.ErrTimestampOutOfRange},
		{"ErrClockFarFuture", 0, time.Unix(1<<62, 0), signing.ErrTimestampOutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := signing.NewStandard([]string{swOld}, signing.StandardConfig{
				Tolerance: tc.tolerance,
				Now:       func() time.Time { return tc.now },
			})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := s.Verify(hdr, body), tc.want; !errors.Is(got, want) {
				t.Errorf("Verify = %v, want %v", got, want)
			}
		})
	}
}

func TestStandard_DefaultClock(t *testing.T) {
	s, err := signing.NewStandard([]string{swOld}, signing.StandardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	body := []byte("{}")
	hdr := headers("webhook-id", "msg_1", "webhook-timestamp", itoa(now), "webhook-signature", standardIndependent(t, swOld, "msg_1", now, body))
	if err := s.Verify(hdr, body); err != nil {
		t.Errorf("Verify with the real clock: %v", err)
	}
}

func TestStandard_BareSecret(t *testing.T) {
	const id, ts = "msg_1", int64(1700000000)
	body := []byte(`{"a":1}`)
	bare := strings.TrimPrefix(swOld, "whsec_")
	withPrefix, err := signing.SignStandard(swOld, id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	without, err := signing.SignStandard(bare, id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := without, withPrefix; got != want {
		t.Errorf("SignStandard(bare) = %q, want %q", got, want)
	}
	s, err := signing.NewStandard([]string{bare}, signing.StandardConfig{Now: fixedClock(ts)})
	if err != nil {
		t.Fatal(err)
	}
	hdr := headers("webhook-id", id, "webhook-timestamp", itoa(ts), "webhook-signature", withPrefix)
	if err := s.Verify(hdr, body); err != nil {
		t.Errorf("Verify with bare secret: %v", err)
	}
}

func TestSignStandard(t *testing.T) {
	body := []byte("hello")
	got, err := signing.SignStandard(swNew, "msg_x", 42, body)
	if err != nil {
		t.Fatal(err)
	}
	if want := standardIndependent(t, swNew, "msg_x", 42, body); got != want {
		t.Errorf("SignStandard = %q, want %q", got, want)
	}
	for _, tc := range []struct{ name, secret, id string }{
		{"ErrEmptySecret", "", "msg_x"},
		{"ErrBadSecret", "whsec_%%%", "msg_x"},
		{"ErrEmptyID", swNew, ""},
		{"ErrIDWithDot", swNew, "a.b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := signing.SignStandard(tc.secret, tc.id, 42, body); err == nil {
				t.Error("SignStandard succeeded, want an error")
			} else {
				assertNoLeak(t, err, tc.secret)
			}
		})
	}
}

func TestStandardHeaders(t *testing.T) {
	const id, ts = "msg_out", int64(1700000123)
	body := []byte(`{"grant":"sku-1"}`)
	got, err := signing.StandardHeaders([]string{swOld, swNew}, id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"webhook-id":        id,
		"webhook-timestamp": "1700000123",
		"webhook-signature": standardIndependent(t, swOld, id, ts, body) + " " + standardIndependent(t, swNew, id, ts, body),
	}
	if len(got) != len(want) {
		t.Errorf("StandardHeaders = %v, want %v", got, want)
	}
	for k, w := range want {
		if g := got[k]; g != w {
			t.Errorf("header %s = %q, want %q", k, g, w)
		}
	}
	// A receiver that knows only the new secret accepts the call.
	s, err := signing.NewStandard([]string{swNew}, signing.StandardConfig{Now: fixedClock(ts)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(func(n string) string { return got[strings.ToLower(n)] }, body); err != nil {
		t.Errorf("Verify(StandardHeaders) = %v", err)
	}

	for _, tc := range []struct {
		name    string
		secrets []string
	}{
		{"ErrNone", nil},
		{"ErrOneEmpty", []string{swOld, ""}},
		{"ErrOneBad", []string{swOld, "whsec_!!"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := signing.StandardHeaders(tc.secrets, id, ts, body); err == nil {
				t.Error("StandardHeaders succeeded, want an error")
			}
		})
	}
}
