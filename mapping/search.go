package mapping

import (
	"regexp"
	"slices"
	"strings"
)

// OrderIDs are the transaction ids of the orders a support search may
// name, for each source: the query as a transaction id itself, and as a
// sender's own order id (an Xsolla order or transaction id, a partner's
// order id, a store's order, entitlement or Xbox order and line item),
// bare or written as the readable order reference storegate shows ("order
// 1001", "epic entitlement ent-5001", "xbox order A line item B"). The
// formats are this package's, so the console needs no knowledge of them.
func OrderIDs(sources []string, query string) []string {
	query = strings.TrimSpace(query)
	if query == "" {
		return nil
	}
	ids := []string{query}
	for _, ext := range externalIDs(query) {
		for _, src := range sources {
			ids = append(ids, "xsolla."+src+".order."+ext, "xsolla."+src+".txn."+ext, "partner."+src+".order."+ext)
			for name := range storePlatforms {
				ids = append(ids, name+"."+src+"."+ext)
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

var xboxRef = regexp.MustCompile(`^xbox order (\S+) line item (\S+)$`)

// externalIDs are the sender order ids a query may stand for: itself, and
// the words of an order reference that can be ids.
func externalIDs(query string) []string {
	if m := xboxRef.FindStringSubmatch(query); m != nil {
		return []string{m[1] + "." + m[2]}
	}
	words := strings.Fields(strings.NewReplacer("(", " ", ")", " ").Replace(query))
	if len(words) == 1 {
		return words
	}
	var out []string
	for _, w := range words {
		// A reference's words that name no id ("order", "epic", ...) hold no digit.
		if strings.ContainsAny(w, "0123456789") && len(out) < 4 {
			out = append(out, w)
		}
	}
	return out
}
