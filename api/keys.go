package api

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/ledger"
	"storegate/mapping"
	"storegate/server"
)

// KeyPools are the game_key SKUs' pools of keys, as support staff fill and
// count them.
type KeyPools interface {
	ImportKeys(ctx context.Context, sku string, codes []string) (ledger.KeyImport, error)
	KeyPool(ctx context.Context, sku string) (ledger.KeyPool, error)
}

func (h *handlers) keyRoutes(admin fiber.Router) {
	admin.Post("/v1/keys/:sku", h.handleImportKeys)
	admin.Get("/v1/keys/:sku", h.handleKeyPool)
}

// keyPool is how every key route starts: the pools and a SKU the catalog
// sells as a game_key, so a mistyped SKU never fills a pool nobody draws
// from.
func (h *handlers) keyPool(c *fiber.Ctx) (KeyPools, string, error) {
	if h.deps.Keys == nil {
		return nil, "", storegate.Errorf(storegate.CodeNotFound, "the embedded ledger, which keeps game keys, is not configured")
	}
	sku, err := Param(c, "sku")
	if err != nil {
		return nil, "", err
	}
	if e, ok := lookup(h.deps.Catalog, sku); !ok || e.Type != storegate.ItemGameKey {
		return nil, "", &storegate.Error{Code: storegate.CodeNotFound, Message: "the catalog has no game_key SKU " + sku, Fields: []string{"sku"}}
	}
	return h.deps.Keys, sku, nil
}

// handleImportKeys adds keys to a pool and answers the counts, never the
// keys: they are worth money, and neither the answer nor the log holds one.
func (h *handlers) handleImportKeys(c *fiber.Ctx) error {
	keys, sku, err := h.keyPool(c)
	if err != nil {
		return err
	}
	var req struct {
		Keys []string `json:"keys"`
	}
	if err := h.srv.Decode(c, "admin/keys", &req); err != nil {
		return err
	}
	out, err := keys.ImportKeys(c.UserContext(), sku, req.Keys)
	if err != nil {
		if storegate.ErrorCode(err) == storegate.CodeInvalidParameter {
			return err
		}
		return storegate.Unavailable(err)
	}
	h.log.Info("game keys imported", "request_id", server.RequestID(c), "sku", sku, "added", out.Added,
		"duplicate", out.Duplicate, "available", out.Available)
	return c.JSON(out)
}

func (h *handlers) handleKeyPool(c *fiber.Ctx) error {
	keys, sku, err := h.keyPool(c)
	if err != nil {
		return err
	}
	p, err := keys.KeyPool(c.UserContext(), sku)
	if err != nil {
		return storegate.Internal(err)
	}
	return c.JSON(p)
}

func lookup(cat *mapping.Catalog, sku string) (mapping.SKU, bool) {
	if cat == nil {
		return mapping.SKU{}, false
	}
	return cat.Lookup(sku)
}
