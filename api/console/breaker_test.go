package console

import "testing"

func TestBreakerOf_ATargetsOwnOrItsWorstDependency(t *testing.T) {
	breakers := map[string]string{"studio": "half-open", "ags-eu.platform": "closed", "ags-eu.iam": "open",
		"ledger.revocation": "closed", "ags-eu2.platform": "closed"}
	for target, want := range map[string]string{"studio": "half-open", "ags-eu": "open (ags-eu.iam)", "ledger": "closed",
		"ags-eu2": "closed", "gone": ""} {
		if got := breakerOf(target, breakers); got != want {
			t.Errorf("breakerOf(%q) = %q, want %q", target, got, want)
		}
	}
}
