// Package revocation holds the clients of external revocation services, the
// ledger's custom revocation strategy: a gRPC client of the AGS plugin
// contract (accelbyte.platform.revocation.v1.Revocation/Revoke, generated in
// revocationpb from a .proto written from protocols.md §3.8) and its HTTP
// JSON equivalent, signed with Standard Webhooks. Both implement
// ledger.CustomRevoker and pass a request id the service can dedupe on.
package revocation

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"storegate/adapters/revocation/revocationpb"
	"storegate/ledger"
)

// RequestIDHeader carries the request id, as gRPC metadata and as an HTTP
// header: stable across retries of one revoke, so the service can dedupe.
const RequestIDHeader = "x-request-id"

// GRPCConfig configures the gRPC client. Zero fields take the defaults.
type GRPCConfig struct {
	// Address is the plugin's host:port (the AGS template serves on 6565).
	// Required.
	Address string
	// TLS dials with TLS against the system's roots. Default false:
	// plaintext, for a plugin beside the gateway on a private network.
	TLS bool
	// Token, when set, is sent as "authorization: Bearer <token>" metadata
	// (the AGS template checks it). Default none.
	Token string
	// Timeout bounds one call. Default 2s.
	Timeout time.Duration
}

// defaultTimeout bounds one call to a revocation service, over gRPC or HTTP.
const defaultTimeout = 2 * time.Second

// WithDefaults returns c with each zero field set to its default, as NewGRPC
// uses it.
func (c GRPCConfig) WithDefaults() GRPCConfig {
	if c.Timeout <= 0 {
		c.Timeout = defaultTimeout
	}
	return c
}

// GRPC calls a revocation plugin over gRPC.
type GRPC struct {
	cfg    GRPCConfig
	conn   *grpc.ClientConn
	client revocationpb.RevocationClient
}

// NewGRPC returns a client. It connects lazily, on the first call, so a
// plugin that is down at start does not stop the gateway.
func NewGRPC(cfg GRPCConfig) (*GRPC, error) {
	if cfg.Address == "" {
		return nil, errors.New("revocation: grpc address is required")
	}
	cfg = cfg.WithDefaults()
	creds := insecure.NewCredentials()
	if cfg.TLS {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(cfg.Address, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("revocation: grpc client: %w", err)
	}
	return &GRPC{cfg: cfg, conn: conn, client: revocationpb.NewRevocationClient(conn)}, nil
}

// Revoke asks the plugin about one entry. A gRPC error (unreachable,
// deadline, a status other than OK) is an error: the ledger retries the
// revoke later with the same request id.
func (g *GRPC) Revoke(ctx context.Context, r ledger.CustomRequest) (ledger.CustomAnswer, error) {
	if r.Quantity > math.MaxInt32 || (r.Item != nil && r.Item.UseCount > math.MaxInt32) {
		return ledger.CustomAnswer{}, fmt.Errorf("quantity %d does not fit the plugin contract's int32", r.Quantity)
	}
	req := &revocationpb.RevokeRequest{RevokeEntryType: r.EntryType, UserId: r.UserID, Namespace: r.Namespace, Quantity: int32(r.Quantity)}
	if r.Item != nil {
		req.Item = &revocationpb.RevokeItemObject{ItemId: r.Item.ItemID, ItemSku: r.Item.ItemSKU, ItemType: r.Item.ItemType,
			UseCount: int32(r.Item.UseCount), EntitlementType: r.Item.EntitlementType}
	}
	if r.Currency != nil {
		req.Currency = &revocationpb.RevokeCurrencyObject{Namespace: r.Currency.Namespace, CurrencyCode: r.Currency.CurrencyCode,
			BalanceOrigin: r.Currency.BalanceOrigin}
	}
	md := metadata.Pairs(RequestIDHeader, r.RequestID)
	if g.cfg.Token != "" {
		md.Append("authorization", "Bearer "+g.cfg.Token)
	}
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, md), g.cfg.Timeout)
	defer cancel()
	resp, err := g.client.Revoke(ctx, req)
	if err != nil {
		return ledger.CustomAnswer{}, err
	}
	return ledger.CustomAnswer{Status: resp.GetStatus(), Reason: resp.GetReason(), CustomRevocation: resp.GetCustomRevocation()}, nil
}

// Close releases the connection.
func (g *GRPC) Close() error { return g.conn.Close() }
