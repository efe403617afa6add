package console

import (
	"context"
	"net/url"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/ledger"
	"storegate/mapping"
	"storegate/store"
)

// found is one player a search found, with what matched.
type found struct {
	PlayerID string
	Why      []string
}

type searchView struct {
	Query   string
	Players []found
}

func (h *handlers) handleHome(c *fiber.Ctx) error {
	return h.render(c, fiber.StatusOK, "search.html", "Find a player", searchView{})
}

// handleSearch finds players by id, by an order or transaction id, or by a
// sender's order id or reference. One player found opens their page.
func (h *handlers) handleSearch(c *fiber.Ctx) error {
	q := strings.TrimSpace(c.Query("q"))
	if q == "" {
		return c.Redirect("/console/", fiber.StatusSeeOther)
	}
	if len(q) > 256 || strings.ContainsFunc(q, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return storegate.FieldError("search for a player id, an order or transaction id, or an order reference (one line, up to 256 characters)", "q")
	}
	players, err := h.search(c.UserContext(), q)
	if err != nil {
		return err
	}
	if len(players) == 1 {
		return c.Redirect("/console/players/"+url.PathEscape(players[0].PlayerID), fiber.StatusSeeOther)
	}
	return h.render(c, fiber.StatusOK, "search.html", "Find a player", searchView{Query: q, Players: players})
}

func (h *handlers) search(ctx context.Context, q string) ([]found, error) {
	var out []found
	add := func(player, why string) {
		i := slices.IndexFunc(out, func(f found) bool { return f.PlayerID == player })
		if i < 0 {
			out = append(out, found{PlayerID: player})
			i = len(out) - 1
		}
		if !slices.Contains(out[i].Why, why) {
			out[i].Why = append(out[i].Why, why)
		}
	}
	known, err := h.playerKnown(ctx, q)
	if err != nil {
		return nil, err
	}
	if known {
		add(q, "player id")
	}
	if h.deps.Lookups == nil {
		return out, nil
	}
	sources, err := h.deps.Lookups.Sources(ctx)
	if err != nil {
		return nil, storegate.Internal(err)
	}
	matches, err := h.deps.Lookups.Commands(ctx, mapping.OrderIDs(sources, q))
	if err != nil {
		return nil, storegate.Internal(err)
	}
	slices.SortFunc(matches, func(a, b store.Match) int { return strings.Compare(a.Command, b.Command) })
	for _, m := range matches {
		why := "order " + m.Order + " (" + m.Source + ")"
		if m.OrderRef != "" {
			why = m.OrderRef + ": " + why
		}
		add(m.PlayerID, why)
	}
	return out, nil
}

// playerKnown says whether any event named the player, or the ledger holds
// a movement of theirs (an adjustment alone makes a player).
func (h *handlers) playerKnown(ctx context.Context, player string) (bool, error) {
	if h.deps.Lookups != nil {
		seen, err := h.deps.Lookups.PlayerSeen(ctx, player)
		if err != nil || seen {
			return seen, storegateInternal(err)
		}
	}
	if h.deps.Economy == nil {
		return false, nil
	}
	entries, _, err := h.deps.Economy.History(ctx, player, ledger.HistoryQuery{Page: ledger.Page{Limit: 1}})
	return len(entries) > 0, storegateInternal(err)
}

func storegateInternal(err error) error {
	if err == nil {
		return nil
	}
	return storegate.Internal(err)
}
