package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"storegate/signing"
)

func TestSignXsolla(t *testing.T) {
	var out bytes.Buffer
	body := `{"notification_type": "payment"}`
	if err := run(context.Background(), []string{"sign", "xsolla", "--secret", "PROJECT_SECRET_KEY"}, strings.NewReader(body), &out, &out); err != nil {
		t.Fatal(err)
	}
	// Xsolla's public example: this body, this secret, this signature.
	if got, want := out.String(), "Authorization: Signature 89404631c86da9f508954da7b50799199a6b1d3a\n"; got != want {
		t.Fatalf("output = %q, want %q", got, want)
	}
}

func TestSignStandard(t *testing.T) {
	var out bytes.Buffer
	body := `{"test": 2432232314}`
	err := run(context.Background(), []string{"sign", "standard", "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"--id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "--timestamp", "1614265330"}, strings.NewReader(body), &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := "webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek\nwebhook-timestamp: 1614265330\nwebhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\n"
	if out.String() != want {
		t.Fatalf("output = %q, want %q", out.String(), want)
	}
	// Without --id and --timestamp the headers still verify.
	out.Reset()
	if err := run(context.Background(), []string{"sign", "standard", "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, strings.NewReader(body), &out, &out); err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		headers[k] = v
	}
	v, _ := signing.NewStandard([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, signing.StandardConfig{})
	if err := v.Verify(func(k string) string { return headers[strings.ToLower(k)] }, []byte(body)); err != nil {
		t.Fatalf("generated headers do not verify: %v (%v)", err, headers)
	}
}

func TestRun_UsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"sign", "xsolla"}, {"sign", "rot13", "--secret", "x"}, {"config"}, {"serve"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, strings.NewReader(""), &out, &out); err == nil {
			t.Errorf("storegate %v: no error", args)
		}
	}
}
