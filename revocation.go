package storegate

// Revocation actions: what a revoke does with each thing it takes back. A
// target's rules set one per kind of thing (currency, durable, consumable);
// a catalog item and an order's source may name another. AGS's names for
// the same rules are in the comments.
const (
	// RevokeAllowNegative takes the whole currency amount back, even below
	// zero (AGS ALWAYS_REVOKE).
	RevokeAllowNegative = "allow_negative"
	// RevokeFailIfNegative takes nothing when the balance would drop below
	// zero, and reports it (AGS REVOKE_OR_REPORT).
	RevokeFailIfNegative = "fail_if_negative"
	// RevokeDurable revokes a durable entitlement.
	RevokeDurable = "revoke"
	// RevokeUnused revokes a consumable only if it has the granted uses
	// left, a box only while unopened.
	RevokeUnused = "revoke_unused"
	// RevokeCustom asks the external revocation service (AGS CUSTOM).
	RevokeCustom = "custom"
	// RevokeNone takes nothing back: the studio does not claw this kind back
	// (AGS's revocation config with enabled false).
	RevokeNone = "none"
)

// Kinds of thing a revocation rule applies to.
const (
	RevocationCurrency   = "currency"
	RevocationDurable    = "durable"
	RevocationConsumable = "consumable"
)

// RevocationKind is the kind whose rule applies to a thing of type t:
// currency for coins, consumable for consumables and boxes (they have uses),
// durable for the rest.
func RevocationKind(t ItemType) string {
	switch t {
	case ItemCurrency:
		return RevocationCurrency
	case ItemConsumable, ItemLootBox, ItemOptionBox:
		return RevocationConsumable
	}
	return RevocationDurable
}

// RevocationActions lists the actions a kind admits, its default first.
// An unknown kind (a bundle, which holds several kinds) admits the actions
// every kind shares.
func RevocationActions(kind string) []string {
	switch kind {
	case RevocationCurrency:
		return []string{RevokeAllowNegative, RevokeFailIfNegative, RevokeCustom, RevokeNone}
	case RevocationDurable:
		return []string{RevokeDurable, RevokeCustom, RevokeNone}
	case RevocationConsumable:
		return []string{RevokeUnused, RevokeCustom, RevokeNone}
	}
	return []string{RevokeCustom, RevokeNone}
}
