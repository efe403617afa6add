package api

import (
	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/ledger"
	"storegate/server"
)

// handleSpend debits a wallet for a game server: one platform's balance, or
// across platforms in the spending order. A negative total refuses every
// spend with INSUFFICIENT_FUNDS until it is positive again.
func (h *handlers) handleSpend(c *fiber.Ctx) error {
	server.SetType(c, "spend")
	eco, player, currency, key, err := h.economyWrite(c, "currency")
	if err != nil {
		return err
	}
	if err := h.knownCurrency(currency); err != nil {
		return err
	}
	var body struct {
		Amount   int64              `json:"amount"`
		Platform storegate.Platform `json:"platform"`
		Reason   string             `json:"reason"`
	}
	if err := h.economyBody(c, "ledger/spend", &body); err != nil {
		return err
	}
	res, err := eco.Spend(c.UserContext(), ledger.Spend{PlayerID: player, Currency: currency, Amount: body.Amount,
		Platform: body.Platform, Key: key, Reason: body.Reason})
	if err != nil {
		return writeError(err)
	}
	return c.JSON(res)
}

// handleConsume uses up uses of a consumable, or opens a box.
func (h *handlers) handleConsume(c *fiber.Ctx) error {
	server.SetType(c, "consume")
	eco, player, ent, key, err := h.economyWrite(c, "entitlementId")
	if err != nil {
		return err
	}
	var body struct {
		UseCount int64  `json:"use_count"`
		Reason   string `json:"reason"`
	}
	if err := h.economyBody(c, "ledger/consume", &body); err != nil {
		return err
	}
	res, err := eco.Consume(c.UserContext(), ledger.Consume{PlayerID: player, EntitlementID: ent, UseCount: body.UseCount,
		Key: key, Reason: body.Reason})
	if err != nil {
		return writeError(err)
	}
	return c.JSON(res)
}
