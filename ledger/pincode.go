package ledger

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"storegate"
	"storegate/store/engine"
)

// pinCodeRef is the order reference of a key handed out for Xsolla's
// get_pincode.
const pinCodeRef = "get_pincode"

// pinCodePools are the pools a get_pincode for product on drm may draw
// from, in order. Xsolla names a key SKU sku_drm (the Digital Distribution
// Hub: "for a game with SKU 110101 on Steam: 110101_steam"), so the pool of
// <product>_<drm, lowercased> comes first; the pool of <product> serves
// every DRM without a pool of its own.
func pinCodePools(product, drm string) []string {
	if drm == "" {
		return []string{product}
	}
	return []string{product + "_" + strings.ToLower(drm), product}
}

// PinCode hands out a game key for Xsolla's get_pincode (webhooks.PinCodes)
// from the first of pinCodePools that has a pool (a key ever imported). The
// key is granted like a key bought in an order: an entitlement of the
// player's whose transaction is the request id, so support sees it with the
// player's keys. A repeat of the request id returns the same key; the take
// is the grants' (takeKey), so no key goes to two requests, across replicas
// too. Every error is one the sender should retry after an operator fixed
// the pools (webhooks answers 503), and none holds a key.
func (l *Ledger) PinCode(ctx context.Context, req storegate.PinCodeRequest) (string, error) {
	switch {
	case req.RequestID == "":
		return "", storegate.FieldError("get_pincode: a request id is required", "request_id")
	case req.PlayerID == "":
		return "", storegate.FieldError("get_pincode: a player is required", "player_id")
	case req.Product == "":
		return "", storegate.FieldError("get_pincode names no digital_content: no game key pool to take a key from", "digital_content")
	}
	slot := keySlot(req.RequestID, 0, 0, 0)
	var code string
	err := l.write(ctx, func(ctx context.Context, tx *engine.Tx) error {
		sku, err := pinCodePool(ctx, tx, pinCodePools(req.Product, req.DRM))
		if err != nil {
			return err
		}
		line := storegate.Line{SKU: sku, Quantity: 1, Type: storegate.ItemGameKey,
			Grants: []storegate.Grant{{Item: sku, Type: storegate.ItemGameKey, Quantity: 1}}}
		c := storegate.Command{ID: req.RequestID, Kind: storegate.KindFulfill, Source: req.Source, PlayerID: req.PlayerID,
			Platform: storegate.PlatformXsolla, OrderRef: pinCodeRef, Lines: []storegate.Line{line}}
		// A repeat is replayed, taking nothing: the key is the first one's.
		if _, err := l.fulfillTx(ctx, tx, c); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT code FROM ledger_keys WHERE entitlement_id = ?`, slot).Scan(&code)
	})
	if err != nil {
		return "", err
	}
	return code, nil
}

// pinCodePool is the first of skus that has a pool, empty or not: an empty
// one is OUT_OF_STOCK when its key is taken, naming the pool to refill.
func pinCodePool(ctx context.Context, tx *engine.Tx, skus []string) (string, error) {
	for _, sku := range skus {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM ledger_keys WHERE sku = ? LIMIT 1`, sku).Scan(&one)
		if err == nil {
			return sku, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", err
		}
	}
	return "", storegate.Errorf(storegate.CodeNotFound, "get_pincode: no game key pool %s: import keys (POST /admin/v1/keys/<sku>) into %s",
		strings.Join(skus, " or "), pinCodeAdvice(skus))
}

// pinCodeAdvice says which pool to import into.
func pinCodeAdvice(skus []string) string {
	if len(skus) == 1 {
		return skus[0]
	}
	return skus[0] + " for this DRM alone, or " + skus[1] + " for every DRM"
}
