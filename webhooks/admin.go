package webhooks

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/ledger"
)

func hashTokens(tokens []string) [][32]byte {
	out := make([][32]byte, 0, len(tokens))
	for _, t := range tokens {
		if t != "" {
			out = append(out, sha256.Sum256([]byte(t)))
		}
	}
	return out
}

// checkBearer compares a bearer token with every accepted one in constant
// time: hashing first makes every comparison the same length, and the loop
// never stops early, so timing tells nothing about which token matched.
func checkBearer(header string, accepted [][32]byte) bool {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	match := 0
	for _, a := range accepted {
		match |= subtle.ConstantTimeCompare(sum[:], a[:])
	}
	return match == 1
}

func (s *Server) requireAdmin(c *fiber.Ctx) error {
	if !checkBearer(c.Get(fiber.HeaderAuthorization), s.admin) {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="storegate-admin"`)
		return storegate.Errorf(storegate.CodeUnauthorized, "admin routes need Authorization: Bearer <admin token>")
	}
	return c.Next()
}

func (s *Server) economy() (Economy, error) {
	if s.deps.Economy == nil {
		return nil, storegate.Errorf(storegate.CodeNotFound, "the embedded ledger is not configured")
	}
	return s.deps.Economy, nil
}

func (s *Server) handleWallets(c *fiber.Ctx) error {
	eco, player, err := s.economyRead(c)
	if err != nil {
		return err
	}
	wallets, err := eco.Wallets(c.UserContext(), player)
	if err != nil {
		return storegate.Internal(err)
	}
	return c.JSON(fiber.Map{"player_id": player, "wallets": wallets})
}

func (s *Server) handleEntitlements(c *fiber.Ctx) error {
	eco, player, err := s.economyRead(c)
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

func (s *Server) handleAttributes(c *fiber.Ctx) error {
	eco, player, err := s.economyRead(c)
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
func (s *Server) handleSetAttributes(c *fiber.Ctx) error {
	eco, player, err := s.economyRead(c)
	if err != nil {
		return err
	}
	var req struct {
		Attributes map[string]json.RawMessage `json:"attributes"`
	}
	if err := s.economyBody(c, "admin/attributes", &req); err != nil {
		return err
	}
	if err := eco.SetUserAttributes(c.UserContext(), player, req.Attributes); err != nil {
		return storegate.Unavailable(err)
	}
	s.log.Info("user attributes set", "request_id", requestID(c), "player_id", player, "count", len(req.Attributes))
	return c.JSON(fiber.Map{"player_id": player, "attributes": req.Attributes})
}
