package signing_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
	"testing"

	"storegate/signing"
)

// Published Convoy vectors (frain-dev/convoy pkg/signature/testdata).
const (
	convoySecret  = "convoy-webhook-secret"
	convoyPayload = `{"event":"charge.success","amount":1000,"currency":"NGN"}`
)

var convoyVectors = []struct {
	algorithm, encoding, mac string
}{
	{"sha256", "hex", "244449b7f48cbc2709060c9dcdc2b3aa47a78f540430579015c579fb12defbb4"},
	{"sha256", "base64", "JERJt/SMvCcJBgydzcKzqkenj1QEMFeQFcV5+xLe+7Q="},
	{"sha512", "hex", "6cc772dc81942ae1b5ffa91c3a6a07b0d37edc8dc6bd83e3518a219f1f19ff71ae1b76d6b320940d414c236a1aad7f7930b63e0f1928951955d31219545e1b66"},
	{"sha512", "base64", "bMdy3IGUKuG1/6kcOmoHsNN+3I3GvYPjUYohnx8Z/3GuG3bWsyCUDUFMI2oarX95MLY+DxkolRlV0xIZVF4bZg=="},
}

// hmacIndependent computes an encoded MAC with crypto/hmac directly.
func hmacIndependent(algorithm, encoding, secret string, body []byte) string {
	var newHash func() hash.Hash = sha256.New
	if algorithm == "sha512" {
		newHash = sha512.New
	}
	m := hmac.New(newHash, []byte(secret))
	m.Write(body)
	if encoding == "base64" {
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	return hex.EncodeToString(m.Sum(nil))
}

func TestHMAC_Convoy(t *testing.T) {
	for _, tc := range convoyVectors {
		t.Run(tc.algorithm+"/"+tc.encoding, func(t *testing.T) {
			h, err := signing.NewHMAC(signing.HMACConfig{
				Header: "X-Convoy-Signature", Algorithm: tc.algorithm, Encoding: tc.encoding,
				Secrets: []string{convoySecret},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := h.Sign([]byte(convoyPayload)), tc.mac; got != want {
				t.Errorf("Sign = %q, want %q", got, want)
			}
			if got, want := hmacIndependent(tc.algorithm, tc.encoding, convoySecret, []byte(convoyPayload)), tc.mac; got != want {
				t.Errorf("independent HMAC = %q, want %q (the test helper is wrong)", got, want)
			}
			if err := h.Verify(headers("x-convoy-signature", tc.mac), []byte(convoyPayload)); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestNewHMAC(t *testing.T) {
	ok := signing.HMACConfig{Header: "X-Signature", Secrets: []string{"s"}}
	with := func(f func(*signing.HMACConfig)) signing.HMACConfig {
		c := ok
		c.Secrets = append([]string(nil), ok.Secrets...)
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name    string
		cfg     signing.HMACConfig
		ok      bool
		wantErr error
	}{
		{"OKDefaults", ok, true, nil},
		{"OKSHA512Base64", with(func(c *signing.HMACConfig) { c.Algorithm, c.Encoding = "sha512", "base64" }), true, nil},
		{"ErrNoHeader", with(func(c *signing.HMACConfig) { c.Header = "" }), false, nil},
		{"ErrAlgorithm", with(func(c *signing.HMACConfig) { c.Algorithm = "sha1" }), false, nil},
		{"ErrEncoding", with(func(c *signing.HMACConfig) { c.Encoding = "base32" }), false, nil},
		{"ErrNoSecret", with(func(c *signing.HMACConfig) { c.Secrets = nil }), false, signing.ErrNoSecret},
		{"ErrEmptySecret", with(func(c *signing.HMACConfig) { c.Secrets = []string{"a", ""} }), false, signing.ErrNoSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := signing.NewHMAC(tc.cfg)
			if got, want := err == nil, tc.ok; got != want {
				t.Fatalf("NewHMAC error = %v, want ok=%v", err, want)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("NewHMAC error = %v, want %v", err, tc.wantErr)
			}
			if got, want := h != nil, tc.ok; got != want {
				t.Errorf("NewHMAC returned %v, want non-nil=%v", h, want)
			}
		})
	}
}

func TestHMAC_Verify(t *testing.T) {
	const oldSecret, newSecret = "old-hmac-secret", "new-hmac-secret"
	body := []byte(`{"order":"o-1","status":"paid"}`)
	for _, alg := range []string{"sha256", "sha512"} {
		for _, enc := range []string{"hex", "base64"} {
			for _, prefix := range []string{"", "sha256="} {
				name := alg + "/" + enc + "/prefix=" + prefix
				h, err := signing.NewHMAC(signing.HMACConfig{
					Header: "X-Hub-Signature-256", Algorithm: alg, Encoding: enc, Prefix: prefix,
					Secrets: []string{oldSecret, newSecret},
				})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				macOld := hmacIndependent(alg, enc, oldSecret, body)
				macNew := hmacIndependent(alg, enc, newSecret, body)
				if got, want := h.Sign(body), prefix+macOld; got != want {
					t.Errorf("%s: Sign = %q, want %q", name, got, want)
				}
				hdr := func(v string) func(string) string { return headers("x-hub-signature-256", v) }
				cases := []verifyCase{
					{"OKFirstSecret", hdr(prefix + macOld), body, nil},
					{"OKSecondSecret", hdr(prefix + macNew), body, nil},
					{"ErrMissing", headers(), body, signing.ErrMissingSignature},
					{"ErrBodyChanged", hdr(prefix + macNew), append(body, ' '), signing.ErrSignatureMismatch},
					{"ErrUnknownSecret", hdr(prefix + hmacIndependent(alg, enc, "other", body)), body, signing.ErrSignatureMismatch},
					{"ErrOtherAlgorithm", hdr(prefix + hmacIndependent(otherAlg(alg), enc, newSecret, body)), body, signing.ErrMalformedSignature},
					{"ErrTruncated", hdr(prefix + macNew[:len(macNew)-4]), body, signing.ErrMalformedSignature},
					{"ErrGarbage", hdr(prefix + "!!not-encoded!!"), body, signing.ErrMalformedSignature},
				}
				if prefix != "" {
					cases = append(cases, verifyCase{"ErrNoPrefix", hdr(macNew), body, signing.ErrMalformedSignature})
				}
				if enc == "hex" {
					cases = append(cases, verifyCase{"OKUppercaseHex", hdr(prefix + strings.ToUpper(macNew)), body, nil})
				}
				for _, tc := range cases {
					t.Run(name+"/"+tc.name, func(t *testing.T) {
						err := h.Verify(tc.header, tc.body)
						if got, want := err, tc.want; !errors.Is(got, want) {
							t.Errorf("Verify = %v, want %v", got, want)
						}
						if err != nil {
							assertNoLeak(t, err, oldSecret, newSecret, macOld, macNew)
						}
					})
				}
			}
		}
	}
}

// verifyCase is one Verify call and the error it must return.
type verifyCase struct {
	name   string
	header func(string) string
	body   []byte
	want   error
}

func otherAlg(alg string) string {
	if alg == "sha256" {
		return "sha512"
	}
	return "sha256"
}
