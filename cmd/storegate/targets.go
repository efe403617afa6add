package main

import (
	"fmt"
	"time"

	"storegate/adapters"
	"storegate/adapters/ags"
	"storegate/adapters/studio"
	"storegate/schemas"
)

// remoteTarget builds an ags or http target.
func remoteTarget(t TargetConfig, set *schemas.Set, now func() time.Time) (adapters.Target, error) {
	switch t.Kind {
	case "ags":
		return ags.New(t.AGS.config(t, now))
	case "http":
		return studio.New(t.HTTP.config(t, set, now))
	}
	return nil, fmt.Errorf("unknown target kind %q", t.Kind)
}
