package webhooks_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"

	"storegate"
	"storegate/internal/gatewaytest"
	"storegate/signing"
)

// acceptAll is an inbox that stores nothing, so the benchmark measures the
// HTTP path alone: routing, signature, schema, decoding, mapping, answer.
type acceptAll struct{}

func (acceptAll) Accept(context.Context, storegate.Event, []storegate.Command, storegate.Answer) (storegate.Answer, bool, error) {
	return storegate.Answer{Status: 204}, false, nil
}

func (acceptAll) Link(context.Context, string, string, string, []byte) ([]byte, error) {
	return nil, nil
}

// BenchmarkXsollaOrderPaid drives the Fiber handler directly with a
// fasthttp request (no sockets) for a signed order_paid.
func BenchmarkXsollaOrderPaid(b *testing.B) {
	g := gatewaytest.New(b, gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")), func(c *gatewaytest.Config) { c.WebhooksDeps.Inbox = acceptAll{} })
	h := g.App.Handler()
	bodies := make([][]byte, 1024)
	sigs := make([]string, len(bodies))
	for i := range bodies {
		bodies[i] = []byte(gatewaytest.OrderPaid(i+1, fmt.Sprint("player-", i%2+1), "crystals_100"))
		sigs[i] = signing.XsollaSignature(bodies[i], gatewaytest.Secret)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/webhooks/xsolla/xs")
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.Header.Set("Authorization", sigs[i%len(bodies)])
		ctx.Request.SetBody(bodies[i%len(bodies)])
		h(&ctx)
		if ctx.Response.StatusCode() != 204 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
