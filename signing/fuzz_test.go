package signing_test

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"storegate/signing"
)

// isSentinel reports whether err is one of the documented Verify errors:
// callers switch on them, so nothing else may escape.
func isSentinel(err error) bool {
	for _, s := range []error{
		signing.ErrMissingSignature, signing.ErrMalformedSignature,
		signing.ErrSignatureMismatch, signing.ErrTimestampOutOfRange,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func FuzzXsollaVerify(f *testing.F) {
	v := loadVectors(f)
	for _, tc := range append(v.Xsolla, v.XsollaMustFail...) {
		f.Add(tc.Secret, tc.Authorization, []byte(tc.Body))
	}
	f.Add("s", "", []byte{})
	f.Fuzz(func(t *testing.T, secret, auth string, body []byte) {
		if secret == "" {
			t.Skip()
		}
		x, err := signing.NewXsolla(secret)
		if err != nil {
			t.Fatal(err)
		}
		want := xsollaIndependent(body, secret)
		err = x.Verify(headers("Authorization", auth), body)
		if err != nil && !isSentinel(err) {
			t.Fatalf("Verify returned a non-sentinel error %v", err)
		}
		// Only the exact lowercase form is accepted, so a pass means equality.
		if err == nil && auth != want {
			t.Fatalf("Verify accepted %q, want only %q", auth, want)
		}
		if err := x.Verify(headers("Authorization", signing.XsollaSignature(body, secret)), body); err != nil {
			t.Fatalf("Verify(XsollaSignature) = %v", err)
		}
	})
}

func FuzzStandardVerify(f *testing.F) {
	v := loadVectors(f)
	for _, sw := range v.Standard {
		f.Add(sw.ID, itoa(sw.Timestamp), sw.Signature, []byte(sw.Body))
	}
	sw1 := v.like(f, "SW-1")
	for _, tc := range append(v.StandardMustFail, v.StandardMustPass...) {
		f.Add(sw1.ID, itoa(sw1.Timestamp), tc.Signature, []byte(sw1.Body))
	}
	f.Add("", "", "", []byte{})
	f.Add("a.b", "-1", "v1,,", []byte("x"))

	// SW-1's secret and the clock at its timestamp make the seeds verify.
	now := sw1.Timestamp
	secrets := []string{sw1.Secret, v.Standard[len(v.Standard)-1].Secret}
	s, err := signing.NewStandard(secrets, signing.StandardConfig{Now: fixedClock(now)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		err := s.Verify(headers("webhook-id", id, "webhook-timestamp", ts, "webhook-signature", sig), body)
		if err != nil && !isSentinel(err) {
			t.Fatalf("Verify returned a non-sentinel error %v", err)
		}
		if err == nil {
			// A pass needs a v1 entry equal to one computed independently.
			n, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil {
				t.Fatalf("Verify accepted timestamp %q", ts)
			}
			entries := strings.Fields(sig)
			found := false
			for _, secret := range secrets {
				want := standardIndependent(t, secret, id, n, body)
				for _, e := range entries {
					found = found || e == want
				}
			}
			if !found {
				t.Fatalf("Verify accepted id=%q ts=%q sig=%q", id, ts, sig)
			}
		}

		// Round trip: what StandardHeaders signs must verify.
		if id == "" || strings.Contains(id, ".") {
			id = "msg_fuzz"
		}
		hs, err := signing.StandardHeaders(secrets, id, now, body)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(func(n string) string { return hs[strings.ToLower(n)] }, body); err != nil {
			t.Fatalf("Verify(StandardHeaders) = %v", err)
		}
		one, err := signing.SignStandard(secrets[1], id, now, body)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(headers("webhook-id", id, "webhook-timestamp", itoa(now), "webhook-signature", one), body); err != nil {
			t.Fatalf("Verify(SignStandard) = %v", err)
		}
	})
}

func FuzzHMACVerify(f *testing.F) {
	for _, tc := range convoyVectors {
		f.Add(tc.mac, []byte(convoyPayload))
		f.Add("sha256="+tc.mac, []byte(convoyPayload))
	}
	f.Add("", []byte{})
	f.Add("sha256=", []byte("x"))

	type variant struct {
		alg, enc, prefix string
		h                *signing.HMAC
	}
	var variants []variant
	for _, alg := range []string{"sha256", "sha512"} {
		for _, enc := range []string{"hex", "base64"} {
			for _, prefix := range []string{"", "sha256="} {
				h, err := signing.NewHMAC(signing.HMACConfig{
					Header: "X-Signature", Algorithm: alg, Encoding: enc, Prefix: prefix,
					Secrets: []string{convoySecret},
				})
				if err != nil {
					f.Fatal(err)
				}
				variants = append(variants, variant{alg, enc, prefix, h})
			}
		}
	}
	f.Fuzz(func(t *testing.T, value string, body []byte) {
		for _, vr := range variants {
			err := vr.h.Verify(headers("X-Signature", value), body)
			if err != nil && !isSentinel(err) {
				t.Fatalf("%s/%s: Verify returned a non-sentinel error %v", vr.alg, vr.enc, err)
			}
			if err == nil {
				// A pass needs the decoded MAC to equal one computed independently.
				want, _ := hex.DecodeString(hmacIndependent(vr.alg, "hex", convoySecret, body))
				enc := strings.TrimPrefix(value, vr.prefix)
				var got []byte
				if vr.enc == "base64" {
					got, _ = base64.StdEncoding.DecodeString(enc)
				} else {
					got, _ = hex.DecodeString(enc)
				}
				if !hmac.Equal(got, want) {
					t.Fatalf("%s/%s: Verify accepted %q", vr.alg, vr.enc, value)
				}
			}
			signed := vr.h.Sign(body)
			if got, want := signed, vr.prefix+hmacIndependent(vr.alg, vr.enc, convoySecret, body); got != want {
				t.Fatalf("%s/%s: Sign = %q, want %q", vr.alg, vr.enc, got, want)
			}
			if err := vr.h.Verify(headers("X-Signature", signed), body); err != nil {
				t.Fatalf("%s/%s: Verify(Sign) = %v", vr.alg, vr.enc, err)
			}
		}
	})
}
