package ledger

import (
	"context"
	"fmt"

	"storegate"
)

// CustomRevoker is an external revocation service: the custom strategy asks
// it, per entry, whether (and how) to revoke. adapters/revocation has a gRPC
// client for the AGS plugin contract (accelbyte.platform.revocation.v1) and
// an HTTP JSON one.
//
// Contract: an answer with Status SUCCESS makes the ledger carry out the
// revocation of the entry in full (currency: debited even below zero;
// durable: revoked; consumable: revoked with whatever uses are left), unless
// CustomRevocation["action"] is "none": the service handled it itself and
// the ledger takes nothing. FAIL takes nothing and records the entry as
// failed with the service's reason. An error (unreachable, timeout, any
// other status) takes nothing and the whole revoke is retried later with
// the same request ids, which the service can dedupe on.
type CustomRevoker interface {
	Revoke(ctx context.Context, r CustomRequest) (CustomAnswer, error)
}

// CustomRequest is one entry sent to the custom revocation service, in the
// AGS plugin's terms (RevokeRequest).
type CustomRequest struct {
	// RequestID is stable across retries of the same revoke: the revoke's
	// transaction id and the entry's position in it.
	RequestID string
	// EntryType is ITEM or CURRENCY.
	EntryType string
	UserID    string
	Namespace string
	Quantity  int64
	Item      *CustomItem     // ITEM entries
	Currency  *CustomCurrency // CURRENCY entries
	// Platform is storegate's name of the platform (balanceOrigin and
	// entitlementOrigin only know AGS's names).
	Platform storegate.Platform
	// TransactionID is the revoke's transaction id; Reverses the fulfillment
	// it undoes, when known.
	TransactionID, Reverses string
}

// CustomItem is AGS's RevokeItemObject.
type CustomItem struct {
	ItemID, ItemSKU, ItemType string
	// UseCount is the uses left on the player's entitlement.
	UseCount        int64
	EntitlementType string // DURABLE or CONSUMABLE
}

// CustomCurrency is AGS's RevokeCurrencyObject.
type CustomCurrency struct {
	Namespace, CurrencyCode, BalanceOrigin string
}

// CustomAnswer is AGS's RevokeResponse.
type CustomAnswer struct {
	Status           string            `json:"status"` // SUCCESS or FAIL
	Reason           string            `json:"reason,omitempty"`
	CustomRevocation map[string]string `json:"customRevocation,omitempty"`
}

// Revocation statuses, as AGS spells them.
const (
	StatusSuccess = "SUCCESS"
	StatusFail    = "FAIL"
)

// handledElsewhere reports an answer whose service took the action itself.
func (a CustomAnswer) handledElsewhere() bool { return a.CustomRevocation["action"] == "none" }

// CustomError is a failure to get an answer from the custom revocation
// service: the revoke took nothing and will be retried.
type CustomError struct {
	RequestID string
	Err       error
}

func (e *CustomError) Error() string {
	return fmt.Sprintf("custom revocation service, request %s: %v", e.RequestID, e.Err)
}

func (e *CustomError) Unwrap() error { return e.Err }

// agsItemType maps an item type to AGS's itemType and entitlementType.
func agsItemType(t storegate.ItemType) (itemType, entitlementType string) {
	switch t {
	case storegate.ItemConsumable:
		return "INGAMEITEM", "CONSUMABLE"
	case storegate.ItemMedia:
		return "MEDIA", "DURABLE"
	case storegate.ItemGameKey:
		return "CODE", "DURABLE"
	case storegate.ItemOptionBox:
		return "OPTIONBOX", "CONSUMABLE"
	case storegate.ItemLootBox:
		return "LOOTBOX", "CONSUMABLE"
	case storegate.ItemCurrency:
		return "COINS", ""
	}
	return "INGAMEITEM", "DURABLE"
}

// balanceOrigin maps a platform to AGS's balanceOrigin (which has no Xsolla:
// it is Other there; CustomRequest.Platform keeps storegate's name).
func balanceOrigin(p storegate.Platform) string {
	switch p {
	case storegate.PlatformPlayStation:
		return "Playstation"
	case storegate.PlatformSteam, storegate.PlatformEpic, storegate.PlatformXbox, storegate.PlatformTwitch, storegate.PlatformSystem:
		return string(p)
	}
	return "Other"
}
