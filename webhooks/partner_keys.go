package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/mapping"
)

// Game keys in the partner flow. An order is refused when it is made if its
// game keys' pools cannot cover it (409 OUT_OF_STOCK), before the partner
// charges its user. The payment takes the keys in the transaction that
// accepts it (store.DB.HoldOnPay), so its answer lists them whenever the
// grant itself is applied, and a payment whose keys ran out since the order
// was made is refused the same way, storing nothing. The order route lists
// them once the order is paid.

// GameKeys are the game keys a target hands out with its grants (the
// embedded ledger), for one target.
type GameKeys interface {
	KeysAvailable(ctx context.Context, skus []string) (map[string]int64, error)
	OrderKeys(ctx context.Context, transactionID string) ([]storegate.GameKey, error)
}

// keyAnswer is one key as a partner reads it.
type keyAnswer struct {
	SKU    string `json:"sku"`
	Key    string `json:"key"`
	Status string `json:"status"`
}

// checkKeys refuses an order whose game keys the target's pools cannot
// cover now, naming the line (items.N.sku) that needs the missing keys.
func (p *partnerAPI) checkKeys(ctx context.Context, src *PartnerSource, o storegate.PartnerOrder) error {
	keys := p.deps.Keys[src.Target]
	if keys == nil {
		return nil
	}
	need, field := map[string]int64{}, map[string]string{}
	for i, l := range o.Lines {
		line, err := p.deps.Catalog.Line(l.SKU, l.Quantity)
		if err != nil {
			continue // priced from this catalog: cannot happen
		}
		for sku, n := range mapping.KeysOf([]storegate.Line{line}) {
			need[sku] += n
			if _, ok := field[sku]; !ok {
				field[sku] = "items"
				if !l.Bonus {
					field[sku] = fmt.Sprintf("items.%d.sku", i)
				}
			}
		}
	}
	if len(need) == 0 {
		return nil
	}
	skus := slices.Sorted(func(yield func(string) bool) {
		for sku := range need {
			if !yield(sku) {
				return
			}
		}
	})
	left, err := keys.KeysAvailable(ctx, skus)
	if err != nil {
		return storegate.Unavailable(err)
	}
	for _, sku := range skus {
		if left[sku] < need[sku] {
			return &storegate.Error{Code: storegate.CodeOutOfStock,
				Message: fmt.Sprintf("not enough game keys of %s: %d left, the order needs %d", sku, left[sku], need[sku]), Fields: []string{field[sku]}}
		}
	}
	return nil
}

// orderKeys lists the keys a partner order's grant took (none before it is
// paid, or when its target hands out no keys).
func (p *partnerAPI) orderKeys(ctx context.Context, src *PartnerSource, orderID int64) ([]keyAnswer, error) {
	keys := p.deps.Keys[src.Target]
	if keys == nil {
		return nil, nil
	}
	given, err := keys.OrderKeys(ctx, mapping.PartnerFulfillID(src.Name, orderID))
	if err != nil {
		return nil, err
	}
	var out []keyAnswer
	for _, k := range given {
		out = append(out, keyAnswer{SKU: k.SKU, Key: k.Key, Status: k.Status})
	}
	return out, nil
}

// withKeys adds the keys a paid order took to its payment's stored answer
// (a repeat of the notification gets them too).
func (p *partnerAPI) withKeys(c *fiber.Ctx, src *PartnerSource, orderID int64, answer storegate.Answer) (storegate.Answer, error) {
	keys, err := p.orderKeys(c.UserContext(), src, orderID)
	if err != nil || len(keys) == 0 {
		return answer, err
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(answer.Body, &body); err != nil {
		return answer, err
	}
	raw, err := json.Marshal(keys)
	if err != nil {
		return answer, err
	}
	body["keys"] = raw
	answer.Body, err = json.Marshal(body)
	return answer, err
}
