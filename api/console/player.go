package console

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/api"
	"storegate/ledger"
)

// What a player page shows at most: the newest of each; the ledger pages
// on.
const (
	pageOrders      = 50
	pageRevocations = 20
	pageEntries     = 50
)

type playerView struct {
	PlayerID        string
	Economy         bool
	Wallets         []ledger.Wallet
	Entitlements    []ledger.Entitlement
	Orders          []storegate.OrderRecord
	Revocations     []ledger.Revocation
	MoreRevocations bool
	Entries         []ledger.Entry
	// Offset is the page of entries shown, newest first; Newer and Older
	// the offsets of the pages beside it (-1: none).
	Offset, Newer, Older int
	KeysOn               bool
	Keys                 []storegate.GameKey
	Currencies           []string
}

// handlePlayer is a player's page: wallets, entitlements, orders with their
// timelines, revocations, the ledger newest first, and game keys when a
// source of them is configured. Everything on it is read for this player
// alone.
func (h *handlers) handlePlayer(c *fiber.Ctx) error {
	player, err := api.Param(c, "playerId")
	if err != nil {
		return err
	}
	offset, err := strconv.Atoi(c.Query("offset", "0"))
	if err != nil || offset < 0 || offset > 1_000_000 {
		return storegate.FieldError("offset is a whole number of entries", "offset")
	}
	ctx := c.UserContext()
	v := playerView{PlayerID: player, Offset: offset, Newer: -1, Older: -1}
	if h.deps.Orders != nil {
		if v.Orders, err = h.deps.Orders.PlayerOrders(ctx, player, pageOrders); err != nil {
			return storegate.Internal(err)
		}
	}
	if eco := h.deps.Economy; eco != nil {
		v.Economy = true
		if v.Wallets, err = eco.Wallets(ctx, player); err != nil {
			return storegate.Internal(err)
		}
		if v.Entitlements, err = eco.Entitlements(ctx, player, true); err != nil {
			return storegate.Internal(err)
		}
		v.Revocations, v.MoreRevocations, err = eco.Revocations(ctx, player, ledger.RevocationQuery{Page: ledger.Page{Limit: pageRevocations}})
		if err != nil {
			return storegate.Internal(err)
		}
		var more bool
		v.Entries, more, err = eco.History(ctx, player, ledger.HistoryQuery{NewestFirst: true, Page: ledger.Page{Limit: pageEntries, Offset: offset}})
		if err != nil {
			return storegate.Internal(err)
		}
		if more {
			v.Older = offset + pageEntries
		}
		if offset > 0 {
			v.Newer = max(0, offset-pageEntries)
		}
		if h.deps.Catalog != nil {
			v.Currencies = h.deps.Catalog.Currencies()
		}
	}
	if h.deps.Keys != nil {
		v.KeysOn = true
		if v.Keys, err = h.deps.Keys.PlayerKeys(ctx, player); err != nil {
			return storegate.Internal(err)
		}
	}
	return h.render(c, fiber.StatusOK, "player.html", "Player "+player, v)
}
