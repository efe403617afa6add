package revocation

import (
	"context"

	"storegate/adapters"
	"storegate/ledger"
)

// Guarded is a revocation service behind its own breaker: while the service
// is down, revokes that need it wait (storegate.UnavailableError) without
// calling it, and nothing else does: grants and other revokes never ask it.
type Guarded struct {
	Service ledger.CustomRevoker
	Breaker *adapters.Breaker
}

// Revoke asks the service through the breaker. Any error (unreachable,
// timeout) counts against the service; an answer, SUCCESS or FAIL, does
// not.
func (g Guarded) Revoke(ctx context.Context, r ledger.CustomRequest) (ledger.CustomAnswer, error) {
	done, after := g.Breaker.Allow()
	if done == nil {
		return ledger.CustomAnswer{}, g.Breaker.Unavailable(after)
	}
	failed := true
	defer func() { done(failed) }()
	ans, err := g.Service.Revoke(ctx, r)
	failed = err != nil
	return ans, err
}

var _ ledger.CustomRevoker = Guarded{}
