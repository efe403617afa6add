package mapping

import (
	"slices"
	"testing"
)

func TestOrderIDs(t *testing.T) {
	sources := []string{"xs", "studio"}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"1001", []string{"xsolla.xs.order.1001", "xsolla.xs.txn.1001", "partner.xs.order.1001", "epic.studio.1001"}},
		{"order 1001", []string{"xsolla.xs.order.1001"}},
		{"epic entitlement ent-5001", []string{"epic.studio.ent-5001"}},
		{"steam order 77 (transid 88)", []string{"steam.studio.77"}},
		{"xbox order A9 line item L1", []string{"xbox.studio.A9.L1"}},
		{"xsolla.xs.order.1001", []string{"xsolla.xs.order.1001"}},
	} {
		got := OrderIDs(sources, tc.query)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("OrderIDs(%q) = %v, want it to hold %s", tc.query, got, w)
			}
		}
	}
	if got := OrderIDs(sources, "  "); got != nil {
		t.Errorf("OrderIDs(blank) = %v, want none", got)
	}
}
