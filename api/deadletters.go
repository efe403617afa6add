package api

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/server"
	"storegate/store"
)

// DeadLetters is the outbox as support staff repair it.
type DeadLetters interface {
	DeadLetters(ctx context.Context, f store.DeadLetterFilter) (store.DeadLetterPage, error)
	DeadLetter(ctx context.Context, id string) (store.DeadLetterDetail, error)
	Replay(ctx context.Context, f store.DeadLetterFilter, actor string) ([]string, error)
	Discard(ctx context.Context, id, reason, actor string) error
}

// deadLetterRoutes registers /admin/v1/deadletters... on the admin group.
func (h *handlers) deadLetterRoutes(admin fiber.Router) {
	admin.Get("/v1/deadletters", h.handleDeadLetters)
	admin.Post("/v1/deadletters/replay", h.handleReplayMany)
	admin.Get("/v1/deadletters/:id", h.handleDeadLetter)
	admin.Post("/v1/deadletters/:id/replay", h.handleReplayOne)
	admin.Post("/v1/deadletters/:id/discard", h.handleDiscard)
}

func (h *handlers) deadLetters() (DeadLetters, error) {
	if h.deps.DeadLetters == nil {
		return nil, storegate.Errorf(storegate.CodeNotFound, "dead letters are not available")
	}
	return h.deps.DeadLetters, nil
}

// filterRequest is a dead-letter selection, from a query string (listing)
// or a JSON body (replay).
type filterRequest struct {
	State    string `json:"state"`
	Target   string `json:"target"`
	Source   string `json:"source"`
	Kind     string `json:"kind"`
	PlayerID string `json:"player_id"`
	Since    string `json:"since"`
	Until    string `json:"until"`
	Limit    int    `json:"limit"`
	// All must be true to replay every dead letter: an empty filter is more
	// likely a mistake than an intent.
	All bool   `json:"all"`
	By  string `json:"by"`
}

func (r filterRequest) filter() (store.DeadLetterFilter, error) {
	f := store.DeadLetterFilter{State: storegate.State(r.State), Target: r.Target, Source: r.Source,
		Kind: storegate.Kind(r.Kind), PlayerID: r.PlayerID, Limit: r.Limit}
	var bad []string
	switch f.State {
	case "", storegate.StateDead, storegate.StateDiscarded:
	default:
		bad = append(bad, "state")
	}
	switch f.Kind {
	case "", storegate.KindFulfill, storegate.KindRevoke, storegate.KindReceipt:
	default:
		bad = append(bad, "kind")
	}
	for _, t := range []struct {
		field, value string
		into         *time.Time
	}{{"since", r.Since, &f.Since}, {"until", r.Until, &f.Until}} {
		if t.value == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.value)
		if err != nil {
			bad = append(bad, t.field)
		}
		*t.into = v
	}
	if r.Limit < 0 || r.Limit > 10000 {
		bad = append(bad, "limit")
	}
	if len(bad) > 0 {
		return f, storegate.FieldError("state is dead or discarded, kind fulfill, revoke or receipt, since and until RFC 3339 times, limit 1..10000", bad...)
	}
	return f, nil
}

func (h *handlers) handleDeadLetters(c *fiber.Ctx) error {
	dl, err := h.deadLetters()
	if err != nil {
		return err
	}
	req := filterRequest{State: c.Query("state"), Target: c.Query("target"), Source: c.Query("source"), Kind: c.Query("kind"),
		PlayerID: c.Query("player_id"), Since: c.Query("since"), Until: c.Query("until")}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return storegate.FieldError("limit must be a number from 1 to 10000", "limit")
		}
		req.Limit = n
	}
	f, err := req.filter()
	if err != nil {
		return err
	}
	f.Cursor = c.Query("cursor")
	page, err := dl.DeadLetters(c.UserContext(), f)
	if err != nil {
		if errors.Is(err, store.ErrBadCursor) {
			return storegate.FieldError("cursor is not one this listing gave", "cursor")
		}
		return storegate.Internal(err)
	}
	return c.JSON(page)
}

func (h *handlers) handleDeadLetter(c *fiber.Ctx) error {
	dl, id, err := h.deadLetterID(c)
	if err != nil {
		return err
	}
	d, err := dl.DeadLetter(c.UserContext(), id)
	if err != nil {
		return storeError(err)
	}
	return c.JSON(d)
}

func (h *handlers) handleReplayOne(c *fiber.Ctx) error {
	dl, id, err := h.deadLetterID(c)
	if err != nil {
		return err
	}
	var req struct {
		By string `json:"by"`
		// State is dead (the default) or discarded: a discarded command is
		// replayed only when asked for by name.
		State string `json:"state"`
	}
	if err := h.srv.Decode(c, "admin/replay", &req); err != nil {
		return err
	}
	ids, err := ReplayDeadLetter(c.UserContext(), dl, id, storegate.State(req.State), req.By)
	if err != nil {
		return err
	}
	h.log.Info("dead letter replayed", "request_id", server.RequestID(c), "command", id, "by", req.By)
	h.deps.Notify()
	return c.JSON(fiber.Map{"replayed": ids, "count": len(ids)})
}

// Replayer puts dead letters back to pending.
type Replayer interface {
	Replay(ctx context.Context, f store.DeadLetterFilter, actor string) ([]string, error)
}

// ReplayDeadLetter is the one replay of one dead letter, for the admin
// route and the console: state is dead (the default) or discarded, by says
// who acts. The caller wakes the dispatcher.
func ReplayDeadLetter(ctx context.Context, dl Replayer, id string, state storegate.State, by string) ([]string, error) {
	if err := checkActor(by); err != nil {
		return nil, err
	}
	if state != "" && state != storegate.StateDead && state != storegate.StateDiscarded {
		return nil, storegate.FieldError("state must be dead or discarded", "state")
	}
	ids, err := dl.Replay(ctx, store.DeadLetterFilter{ID: id, State: state}, by)
	if err != nil {
		return nil, storeError(err)
	}
	return ids, nil
}

func (h *handlers) handleReplayMany(c *fiber.Ctx) error {
	dl, err := h.deadLetters()
	if err != nil {
		return err
	}
	var req filterRequest
	if err := h.srv.Decode(c, "admin/replay_many", &req); err != nil {
		return err
	}
	if err := checkActor(req.By); err != nil {
		return err
	}
	f, err := req.filter()
	if err != nil {
		return err
	}
	if f.Empty() && !req.All {
		return storegate.FieldError("say which dead letters to replay (target, source, kind, player_id, since, until), or all: true", "all")
	}
	limit := f.Limit
	if limit == 0 {
		limit = 1000
	}
	ids, err := dl.Replay(c.UserContext(), f, req.By)
	if err != nil {
		return storeError(err)
	}
	h.log.Info("dead letters replayed", "request_id", server.RequestID(c), "count", len(ids), "by", req.By)
	if len(ids) > 0 {
		h.deps.Notify()
	}
	if ids == nil {
		ids = []string{}
	}
	// more: the limit was reached, so the same call again may replay more.
	return c.JSON(fiber.Map{"replayed": ids, "count": len(ids), "more": len(ids) == limit})
}

func (h *handlers) handleDiscard(c *fiber.Ctx) error {
	dl, id, err := h.deadLetterID(c)
	if err != nil {
		return err
	}
	var req struct {
		By     string `json:"by"`
		Reason string `json:"reason"`
	}
	if err := h.srv.Decode(c, "admin/discard", &req); err != nil {
		return err
	}
	if err := DiscardDeadLetter(c.UserContext(), dl, id, req.Reason, req.By); err != nil {
		return err
	}
	h.log.Info("dead letter discarded", "request_id", server.RequestID(c), "command", id, "by", req.By)
	return c.JSON(fiber.Map{"discarded": id})
}

// Discarder gives up on dead letters.
type Discarder interface {
	Discard(ctx context.Context, id, reason, actor string) error
}

// DiscardDeadLetter is the one discard of a dead letter, for the admin
// route and the console: it needs who decided and why.
func DiscardDeadLetter(ctx context.Context, dl Discarder, id, reason, by string) error {
	var bad []string
	if checkActor(by) != nil {
		bad = append(bad, "by")
	}
	if strings.TrimSpace(reason) == "" || len(reason) > 1000 {
		bad = append(bad, "reason")
	}
	if len(bad) > 0 {
		return storegate.FieldError("a discard needs who decided (by) and why (reason, up to 1000 characters)", bad...)
	}
	if err := dl.Discard(ctx, id, reason, by); err != nil {
		return storeError(err)
	}
	return nil
}

// deadLetterID is the store and the :id parameter, unescaped, of a route
// about one command.
func (h *handlers) deadLetterID(c *fiber.Ctx) (DeadLetters, string, error) {
	dl, err := h.deadLetters()
	if err != nil {
		return nil, "", err
	}
	id, err := url.PathUnescape(c.Params("id"))
	if err != nil || id == "" {
		return nil, "", storegate.FieldError("the command id in the path is not valid", "id")
	}
	return dl, id, nil
}

func checkActor(by string) error {
	if strings.TrimSpace(by) == "" || len(by) > 200 {
		return storegate.FieldError("say who is acting: by, up to 200 characters", "by")
	}
	return nil
}

func storeError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return storegate.Errorf(storegate.CodeNotFound, "no command with this id")
	case errors.Is(err, store.ErrPaidGrant):
		return &storegate.Error{Code: storegate.CodeConflict, Message: strings.TrimPrefix(err.Error(), store.ErrPaidGrant.Error()+": ") +
			": replay it once its cause is fixed; discarding it would keep the payment without the grant"}
	case errors.Is(err, store.ErrState):
		return &storegate.Error{Code: storegate.CodeConflict, Message: "only a dead letter can be replayed or discarded (" +
			strings.TrimPrefix(err.Error(), store.ErrState.Error()+": ") + ")"}
	}
	return storegate.Internal(err)
}
