package console

import (
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/api"
	"storegate/ledger"
	"storegate/server"
)

// A manual update takes three steps: the form, a review that shows the
// balance before and after and asks to confirm, and the change itself.
// The review fixes the update's idempotency key, so confirming twice (a
// double click, a reload) changes the balance once.

type adjustView struct {
	PlayerID  string
	Currency  string
	Platforms []storegate.Platform
	Form      adjustForm
	// Review: the balance now, and after the update.
	Before, After int64
	Key           string
	Result        *ledger.AdjustmentResult
}

type adjustForm struct {
	Amount        int64
	Platform      storegate.Platform
	Reason        string
	AllowNegative bool
}

func (h *handlers) handleAdjustForm(c *fiber.Ctx) error {
	v, err := h.adjustTarget(c)
	if err != nil {
		return err
	}
	v.Form.Platform = storegate.PlatformSystem
	return h.render(c, fiber.StatusOK, "adjust.html", "Manual update of "+v.Currency, v)
}

// handleAdjust reviews the update (step=review) or makes it (step=confirm).
func (h *handlers) handleAdjust(c *fiber.Ctx) error {
	v, err := h.adjustTarget(c)
	if err != nil {
		return err
	}
	if v.Form, err = readAdjustForm(c); err != nil {
		return err
	}
	a := ledger.Adjustment{PlayerID: v.PlayerID, Currency: v.Currency, Amount: v.Form.Amount, Platform: v.Form.Platform,
		Reason: v.Form.Reason, Actor: current(c).operator, AllowNegative: v.Form.AllowNegative}
	if c.FormValue("step") != "confirm" {
		return h.reviewAdjustment(c, v, a)
	}
	a.Key = c.FormValue("key")
	res, err := api.Adjust(c.UserContext(), h.srv.Schemas(), h.deps.Economy, h.deps.Catalog, a)
	if err != nil {
		return err
	}
	h.log.Info("console adjustment", "request_id", server.RequestID(c), "player_id", a.PlayerID, "currency", a.Currency,
		"amount", a.Amount, "operator", a.Actor, "replayed", res.Replayed)
	v.Result = &res
	return h.render(c, fiber.StatusOK, "adjust.html", "Manual update of "+v.Currency, v)
}

// reviewAdjustment shows what the update would do. The ledger alone
// decides whether it may (a debit below zero without allow negative is
// refused at the confirmation, as the admin route refuses it).
func (h *handlers) reviewAdjustment(c *fiber.Ctx, v adjustView, a ledger.Adjustment) error {
	wallets, err := h.deps.Economy.Wallets(c.UserContext(), v.PlayerID)
	if err != nil {
		return storegate.Internal(err)
	}
	for _, w := range wallets {
		for _, p := range w.Platforms {
			if w.Currency == v.Currency && p.Platform == v.Form.Platform {
				v.Before = p.Balance
			}
		}
	}
	v.After = v.Before + a.Amount
	// A key of the console's own: "console-" and a random token fit
	// ledger.ValidKey, and the ledger scopes keys per player.
	v.Key = "console-" + randomToken()[:22]
	return h.render(c, fiber.StatusOK, "adjust.html", "Confirm the manual update of "+v.Currency, v)
}

// adjustTarget is the player and currency of an adjustment route.
func (h *handlers) adjustTarget(c *fiber.Ctx) (adjustView, error) {
	if h.deps.Economy == nil {
		return adjustView{}, storegate.Errorf(storegate.CodeNotFound, "the embedded ledger is not configured")
	}
	player, err := api.Param(c, "playerId")
	if err != nil {
		return adjustView{}, err
	}
	currency := c.Query("currency", c.FormValue("currency"))
	if err := api.KnownCurrency(h.deps.Catalog, currency); err != nil {
		return adjustView{}, err
	}
	return adjustView{PlayerID: player, Currency: currency, Platforms: storegate.Platforms}, nil
}

func readAdjustForm(c *fiber.Ctx) (adjustForm, error) {
	amount, err := strconv.ParseInt(strings.TrimSpace(c.FormValue("amount")), 10, 64)
	if err != nil || amount == 0 {
		return adjustForm{}, storegate.FieldError("amount is a whole number, positive to grant, negative to take, never 0", "amount")
	}
	return adjustForm{Amount: amount, Platform: storegate.Platform(c.FormValue("platform")), Reason: strings.TrimSpace(c.FormValue("reason")),
		AllowNegative: c.FormValue("allow_negative") == "on"}, nil
}
