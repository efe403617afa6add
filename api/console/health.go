package console

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
)

// Health is how the gateway is doing, as the health page shows it. The
// console asks for it through this interface alone, so where the figures
// come from (metrics and the store today; the dispatcher's own view of its
// breakers later) can change without the page changing.
type Health interface {
	Health(ctx context.Context) (HealthReport, error)
}

// HealthReport is the state of every source and target now.
type HealthReport struct {
	At time.Time
	// Window is how far back the rates reach.
	Window  time.Duration
	Sources []Endpoint
	Targets []Endpoint
}

// Endpoint is one source or target.
type Endpoint struct {
	Name string
	// Breaker is a target's breaker: closed, half-open, open; "" for a
	// source, or a target whose breaker is not known.
	Breaker string
	// Backlog is the commands waiting (a source's: those its events owe);
	// Dead the target's dead letters.
	Backlog, Dead int
	OldestPending time.Time
	LastError     string
	LastErrorAt   time.Time
	// PerMinute is the requests answered (a source) or deliveries made (a
	// target) in each of the last minutes, oldest first.
	PerMinute []int
}

func (h *handlers) handleHealth(c *fiber.Ctx) error {
	if h.deps.Health == nil {
		return storegate.Errorf(storegate.CodeNotFound, "no health report is configured")
	}
	r, err := h.deps.Health.Health(c.UserContext())
	if err != nil {
		return storegate.Internal(err)
	}
	return h.render(c, fiber.StatusOK, "health.html", "Health", r)
}
