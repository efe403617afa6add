package api

import (
	"context"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
)

// Orders is the store as the Fulfill Orders and order-tracking routes use
// it.
type Orders interface {
	// PlayerOrders lists a player's tracked orders, newest first, with
	// their histories.
	PlayerOrders(ctx context.Context, playerID string, limit int) ([]storegate.OrderRecord, error)
	OrderStatuses(ctx context.Context, playerID string, ids []string) (map[string]storegate.OrderStatus, error)
	// TrackOrder records a step no event or command carries.
	TrackOrder(ctx context.Context, n storegate.OrderNote) error
	FulfillCursor(ctx context.Context, playerID string, platform storegate.Platform) (time.Time, bool, error)
	SetFulfillCursor(ctx context.Context, playerID string, platform storegate.Platform, since time.Time) error
	// Durable returns once every commit a read before it could have seen
	// is on disk (store.DB.Durable).
	Durable(ctx context.Context) error
}

// handleOrders is GET /admin/v1/players/{playerId}/orders[?limit=N]: every
// order of the player from every sender, newest first, with its history
// (received, granted, revoked, refunded, failed and why).
func (h *handlers) handleOrders(c *fiber.Ctx) error {
	if h.deps.Orders == nil {
		return storegate.Errorf(storegate.CodeNotFound, "order tracking is not configured")
	}
	limit := 100
	if q := c.Query("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 500 {
			return storegate.FieldError("limit must be a whole number between 1 and 500", "limit")
		}
		limit = n
	}
	player, err := Param(c, "playerId")
	if err != nil {
		return err
	}
	orders, err := h.deps.Orders.PlayerOrders(c.UserContext(), player, limit)
	if err != nil {
		return storegate.Internal(err)
	}
	return c.JSON(fiber.Map{"player_id": player, "orders": orders})
}
