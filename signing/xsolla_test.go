package signing_test

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"storegate/signing"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// xsollaIndependent computes the header with crypto/sha1 directly.
func xsollaIndependent(body []byte, secret string) string {
	sum := sha1.Sum(append(append([]byte{}, body...), secret...))
	return "Signature " + hex.EncodeToString(sum[:])
}

func TestNewXsolla(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secrets []string
		wantErr error
	}{
		{"OK", []string{"a"}, nil},
		{"OKRotation", []string{"a", "b"}, nil},
		{"ErrNone", nil, signing.ErrNoSecret},
		{"ErrEmpty", []string{""}, signing.ErrNoSecret},
		{"ErrOneEmpty", []string{"a", ""}, signing.ErrNoSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := signing.NewXsolla(tc.secrets...)
			if got, want := err, tc.wantErr; !errors.Is(got, want) {
				t.Errorf("NewXsolla error = %v, want %v", got, want)
			}
		})
	}
}

func TestXsolla_Verify(t *testing.T) {
	const oldSecret, newSecret = "old-secret", "new-secret"
	body := []byte(`{"notification_type": "payment"}`)
	x, err := signing.NewXsolla(oldSecret, newSecret)
	if err != nil {
		t.Fatal(err)
	}
	good := xsollaIndependent(body, newSecret)
	for _, tc := range []verifyCase{
		{"OKFirstSecret", headers("Authorization", xsollaIndependent(body, oldSecret)), body, nil},
		{"OKSecondSecret", headers("Authorization", good), body, nil},
		{"OKLowercaseHeaderName", headers("authorization", good), body, nil},
		{"ErrMissing", headers(), body, signing.ErrMissingSignature},
		{"ErrUnknownSecret", headers("Authorization", xsollaIndependent(body, "other")), body, signing.ErrSignatureMismatch},
		{"ErrBodyChanged", headers("Authorization", good), append(body, ' '), signing.ErrSignatureMismatch},
		{"ErrUppercase", headers("Authorization", "Signature "+strings.ToUpper(good[len("Signature "):])), body, signing.ErrMalformedSignature},
		{"ErrSchemeCase", headers("Authorization", "signature "+good[len("Signature "):]), body, signing.ErrMalformedSignature},
		{"ErrTwoSpaces", headers("Authorization", "Signature  "+good[len("Signature "):]), body, signing.ErrMalformedSignature},
		{"ErrTrailingSpace", headers("Authorization", good+" "), body, signing.ErrMalformedSignature},
		{"ErrShort", headers("Authorization", good[:len(good)-1]), body, signing.ErrMalformedSignature},
		{"ErrBareHex", headers("Authorization", good[len("Signature "):]), body, signing.ErrMalformedSignature},
		{"ErrHMACScheme", headers("Authorization", "Bearer xyz"), body, signing.ErrMalformedSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := x.Verify(tc.header, tc.body)
			if got, want := err, tc.want; !errors.Is(got, want) {
				t.Errorf("Verify = %v, want %v", got, want)
			}
			if err != nil {
				assertNoLeak(t, err, oldSecret, newSecret, good[len("Signature "):])
			}
		})
	}
}

func TestXsollaSignature(t *testing.T) {
	for _, tc := range []struct {
		body, secret string
	}{
		{"", "s"},
		{`{"a":1}`, "PROJECT_SECRET_KEY"},
		{"\x00\xff binary", "k\x00ey"},
	} {
		if got, want := signing.XsollaSignature([]byte(tc.body), tc.secret), xsollaIndependent([]byte(tc.body), tc.secret); got != want {
			t.Errorf("XsollaSignature(%q) = %q, want %q", tc.body, got, want)
		}
	}
}

// assertNoLeak checks that an error message carries no secret nor any
// expected MAC.
func assertNoLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	msg := err.Error()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error %q leaks a secret or MAC", msg)
		}
	}
}
