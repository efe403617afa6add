package webhooks

import (
	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/ledger"
)

// requireGame admits game servers: a bearer token from Config.GameTokens,
// compared in constant time like the admin tokens.
func (s *Server) requireGame(c *fiber.Ctx) error {
	c.Locals(localSource, "game")
	if !checkBearer(c.Get(fiber.HeaderAuthorization), s.game) {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="storegate-game"`)
		return storegate.Errorf(storegate.CodeUnauthorized, "game-server routes need Authorization: Bearer <game token>")
	}
	return c.Next()
}

// handleSpend debits a wallet for a game server: one platform's balance, or
// across platforms in the spending order. A negative total refuses every
// spend with INSUFFICIENT_FUNDS until it is positive again.
func (s *Server) handleSpend(c *fiber.Ctx) error {
	c.Locals(localType, "spend")
	eco, player, currency, key, err := s.economyWrite(c, "currency")
	if err != nil {
		return err
	}
	if err := s.knownCurrency(currency); err != nil {
		return err
	}
	var body struct {
		Amount   int64              `json:"amount"`
		Platform storegate.Platform `json:"platform"`
		Reason   string             `json:"reason"`
	}
	if err := s.economyBody(c, "ledger/spend", &body); err != nil {
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
func (s *Server) handleConsume(c *fiber.Ctx) error {
	c.Locals(localType, "consume")
	eco, player, ent, key, err := s.economyWrite(c, "entitlementId")
	if err != nil {
		return err
	}
	var body struct {
		UseCount int64  `json:"use_count"`
		Reason   string `json:"reason"`
	}
	if err := s.economyBody(c, "ledger/consume", &body); err != nil {
		return err
	}
	res, err := eco.Consume(c.UserContext(), ledger.Consume{PlayerID: player, EntitlementID: ent, UseCount: body.UseCount,
		Key: key, Reason: body.Reason})
	if err != nil {
		return writeError(err)
	}
	return c.JSON(res)
}
