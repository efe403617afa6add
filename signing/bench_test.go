package signing_test

import (
	"bytes"
	"testing"

	"storegate/signing"
)

// benchBody is 1 KiB, about the size of an Xsolla payment notification.
var benchBody = bytes.Repeat([]byte(`{"k":"v"},`), 103)[:1024]

func BenchmarkXsollaVerify(b *testing.B) {
	const secret = "PROJECT_SECRET_KEY"
	x, err := signing.NewXsolla(secret)
	if err != nil {
		b.Fatal(err)
	}
	hdr := headers("Authorization", signing.XsollaSignature(benchBody, secret))
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if err := x.Verify(hdr, benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStandardVerify(b *testing.B) {
	const id, ts = "msg_p5jXN8AQM9LWM0D4loKWxJek", int64(1614265330)
	s, err := signing.NewStandard([]string{swOld}, signing.StandardConfig{Now: fixedClock(ts)})
	if err != nil {
		b.Fatal(err)
	}
	sig, err := signing.SignStandard(swOld, id, ts, benchBody)
	if err != nil {
		b.Fatal(err)
	}
	hdr := headers("webhook-id", id, "webhook-timestamp", itoa(ts), "webhook-signature", sig)
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Verify(hdr, benchBody); err != nil {
			b.Fatal(err)
		}
	}
}
