package main

import (
	"context"
	"fmt"
	"time"

	"storegate"
	"storegate/adapters"
	"storegate/adapters/ags"
	"storegate/adapters/studio"
	"storegate/schemas"
)

// remote is what the wiring needs of every target: delivery and user
// checks.
type remote interface {
	Deliver(ctx context.Context, c storegate.Command) storegate.Outcome
	UserExists(ctx context.Context, playerID string) (bool, error)
}

// remoteTarget builds an ags or http target, its breakers reporting to
// onBreaker.
func remoteTarget(t TargetConfig, set *schemas.Set, now func() time.Time, onBreaker adapters.BreakerObserver) (remote, error) {
	switch t.Kind {
	case "ags":
		c := t.AGS.config(t, now)
		c.OnBreaker = onBreaker
		return ags.New(c)
	case "http":
		c := t.HTTP.config(t, set, now)
		c.OnBreaker = onBreaker
		return studio.New(c)
	}
	return nil, fmt.Errorf("unknown target kind %q", t.Kind)
}
