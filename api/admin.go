package api

import (
	"encoding/json"
	"slices"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/ledger"
	"storegate/server"
)

func (h *handlers) economy() (Economy, error) {
	if h.deps.Economy == nil {
		return nil, storegate.Errorf(storegate.CodeNotFound, "the embedded ledger is not configured")
	}
	return h.deps.Economy, nil
}

func (h *handlers) handleWallets(c *fiber.Ctx) error {
	eco, player, err := h.economyRead(c)
	if err != nil {
		return err
	}
	wallets, err := eco.Wallets(c.UserContext(), player)
	if err != nil {
		return storegate.Internal(err)
	}
	return c.JSON(fiber.Map{"player_id": player, "wallets": wallets})
}

func (h *handlers) handleEntitlements(c *fiber.Ctx) error {
	eco, player, err := h.economyRead(c)
	if err != nil {
		return err
	}
	// status: active (default), consumed, revoked, or all.
	status, err := queryEnum(c, "status", ledger.StatusActive, ledger.StatusConsumed, ledger.StatusRevoked, "all")
	if err != nil {
		return err
	}
	ents, err := eco.Entitlements(c.UserContext(), player, status != "" && status != ledger.StatusActive)
	if err != nil {
		return storegate.Internal(err)
	}
	if status == ledger.StatusConsumed || status == ledger.StatusRevoked {
		ents = slices.DeleteFunc(ents, func(e ledger.Entitlement) bool { return e.Status != status })
	}
	return c.JSON(fiber.Map{"player_id": player, "entitlements": ents})
}

func (h *handlers) handleAttributes(c *fiber.Ctx) error {
	eco, player, err := h.economyRead(c)
	if err != nil {
		return err
	}
	attrs, err := eco.UserAttributes(c.UserContext(), player)
	if err != nil {
		return storegate.Internal(err)
	}
	if attrs == nil {
		attrs = map[string]json.RawMessage{}
	}
	return c.JSON(fiber.Map{"player_id": player, "attributes": attrs})
}

// handleSetAttributes replaces what the ledger tells Xsolla about a player.
// A PUT of the whole set: repeating it changes nothing, so it needs no
// idempotency key.
func (h *handlers) handleSetAttributes(c *fiber.Ctx) error {
	eco, player, err := h.economyRead(c)
	if err != nil {
		return err
	}
	var req struct {
		Attributes map[string]json.RawMessage `json:"attributes"`
	}
	if err := h.economyBody(c, "admin/attributes", &req); err != nil {
		return err
	}
	if err := eco.SetUserAttributes(c.UserContext(), player, req.Attributes); err != nil {
		return storegate.Unavailable(err)
	}
	h.log.Info("user attributes set", "request_id", server.RequestID(c), "player_id", player, "count", len(req.Attributes))
	return c.JSON(fiber.Map{"player_id": player, "attributes": req.Attributes})
}
