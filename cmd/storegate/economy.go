package main

import (
	"io"
	"time"

	"storegate"
	"storegate/adapters"
	"storegate/adapters/revocation"
	"storegate/ledger"
	"storegate/store"
	"storegate/store/engine"
)

// newLedger builds a ledger target, returning its custom revocation client
// (to close with the gateway) even when it fails.
// tables are the schemas kept in the store beside its own. The ledger's are
// applied whether or not a ledger target is configured, so that adding one
// later needs no migration step of its own.
func tables() []engine.Migrations {
	return []engine.Migrations{ledger.Migrations()}
}

// sources are the revocation overrides of the sources it serves.
func newLedger(db *store.DB, t TargetConfig, sources map[string]ledger.SourceRules, now func() time.Time,
	onBreaker adapters.BreakerObserver) (*ledger.Ledger, io.Closer, error) {
	cfg, closer, err := t.ledgerConfig()
	if err != nil {
		return nil, closer, err
	}
	cfg.Revocation.Sources = sources
	if cfg.Revocation.Custom != nil {
		// The revocation service has a breaker of its own: while it is down,
		// the revokes that ask it wait, and nothing else does.
		b := adapters.NewBreaker(t.Name+".revocation", t.Breaker.config(), now, onBreaker)
		cfg.Revocation.Custom = revocation.Guarded{Service: cfg.Revocation.Custom, Breaker: b}
	}
	l, err := ledger.New(db, cfg)
	return l, closer, err
}

// ledgerConfig builds a ledger target's ledger.Config, with its custom
// revocation client (returned to be closed with the gateway) when it has one.
func (t TargetConfig) ledgerConfig() (ledger.Config, io.Closer, error) {
	cfg := ledger.Config{Players: t.Players, PlayerPattern: t.PlayerPattern, Revocation: ledger.Rules{
		Currency: t.Revocation.Currency, Durable: t.Revocation.Durable, Consumable: t.Revocation.Consumable,
		Namespace: t.Revocation.Custom.Namespace}}
	for _, name := range t.SpendOrder {
		p, err := storegate.ParsePlatform(name)
		if err != nil {
			return cfg, nil, err
		}
		cfg.SpendOrder = append(cfg.SpendOrder, p)
	}
	var closer io.Closer
	switch c := t.Revocation.Custom; {
	case c.GRPC != nil:
		g, err := revocation.NewGRPC(c.GRPC.config())
		if err != nil {
			return cfg, nil, err
		}
		cfg.Revocation.Custom, closer = g, g
	case c.HTTP != nil:
		h, err := revocation.NewHTTP(c.HTTP.config())
		if err != nil {
			return cfg, nil, err
		}
		cfg.Revocation.Custom = h
	}
	return cfg, closer, nil
}
