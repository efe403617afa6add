package console

import (
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/api"
	"storegate/server"
	"storegate/store"
)

type deadLettersView struct {
	Filter deadLetterFilter
	Page   store.DeadLetterPage
}

// deadLetterFilter is the list's filter as the form writes it.
type deadLetterFilter struct {
	State, Target, Source, Player, Since, Until string
}

// store is the filter the form's values stand for. Times are RFC 3339, or
// what a browser's date-and-time field sends (2026-11-01T12:00), in UTC.
func (f deadLetterFilter) store() (store.DeadLetterFilter, error) {
	out := store.DeadLetterFilter{State: storegate.State(f.State), Target: f.Target, Source: f.Source, PlayerID: f.Player, Limit: 100}
	if out.State != "" && out.State != storegate.StateDead && out.State != storegate.StateDiscarded {
		return out, storegate.FieldError("state is dead or discarded", "state")
	}
	var err error
	if out.Since, err = formTime(f.Since, "since"); err != nil {
		return out, err
	}
	out.Until, err = formTime(f.Until, "until")
	return out, err
}

func formTime(v, field string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, storegate.FieldError(field+" is a time like 2026-11-01T12:00 (UTC)", field)
}

func (h *handlers) deadLetters() (DeadLetters, error) {
	if h.deps.DeadLetters == nil {
		return nil, storegate.Errorf(storegate.CodeNotFound, "dead letters are not available")
	}
	return h.deps.DeadLetters, nil
}

// handleDeadLetters lists dead letters, the most recently dead first,
// filtered by target, source, player and when they died.
func (h *handlers) handleDeadLetters(c *fiber.Ctx) error {
	dl, err := h.deadLetters()
	if err != nil {
		return err
	}
	v := deadLettersView{Filter: deadLetterFilter{State: c.Query("state"), Target: c.Query("target"), Source: c.Query("source"),
		Player: c.Query("player"), Since: c.Query("since"), Until: c.Query("until")}}
	f, err := v.Filter.store()
	if err != nil {
		return err
	}
	f.Cursor = c.Query("cursor")
	if v.Page, err = dl.DeadLetters(c.UserContext(), f); err != nil {
		if errors.Is(err, store.ErrBadCursor) {
			return storegate.FieldError("cursor is not one this listing gave", "cursor")
		}
		return storegate.Internal(err)
	}
	return h.render(c, fiber.StatusOK, "deadletters.html", "Dead letters", v)
}

type deadLetterView struct {
	store.DeadLetterDetail
	// Action is the confirmation asked for: "replay", "discard" or none;
	// Done what was just done.
	Action, Done string
}

func (h *handlers) deadLetter(c *fiber.Ctx) (DeadLetters, deadLetterView, error) {
	dl, err := h.deadLetters()
	if err != nil {
		return nil, deadLetterView{}, err
	}
	id, err := api.Param(c, "id")
	if err != nil {
		return nil, deadLetterView{}, err
	}
	d, err := dl.DeadLetter(c.UserContext(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, deadLetterView{}, storegate.Errorf(storegate.CodeNotFound, "no command with this id")
	}
	if err != nil {
		return nil, deadLetterView{}, storegate.Internal(err)
	}
	return dl, deadLetterView{DeadLetterDetail: d}, nil
}

// handleDeadLetter shows one command: why it died and every attempt.
func (h *handlers) handleDeadLetter(c *fiber.Ctx) error {
	_, v, err := h.deadLetter(c)
	if err != nil {
		return err
	}
	return h.render(c, fiber.StatusOK, "deadletter.html", "Dead letter", v)
}

func (h *handlers) handleReplayForm(c *fiber.Ctx) error  { return h.confirmForm(c, "replay") }
func (h *handlers) handleDiscardForm(c *fiber.Ctx) error { return h.confirmForm(c, "discard") }

// confirmForm asks to confirm an action on a dead letter; only the post
// that answers it acts.
func (h *handlers) confirmForm(c *fiber.Ctx, action string) error {
	_, v, err := h.deadLetter(c)
	if err != nil {
		return err
	}
	v.Action = action
	return h.render(c, fiber.StatusOK, "deadletter.html", strings.ToUpper(action[:1])+action[1:]+" this dead letter?", v)
}

// handleReplay puts the dead letter back to pending with the same
// transaction id, through the admin route's replay, and wakes the
// dispatcher.
func (h *handlers) handleReplay(c *fiber.Ctx) error {
	dl, v, err := h.deadLetter(c)
	if err != nil {
		return err
	}
	operator := current(c).operator
	// A discarded command is replayed only when named as such; anything
	// else is asked for as a dead letter, and the store says if it is not.
	state := storegate.StateDead
	if v.State == storegate.StateDiscarded {
		state = storegate.StateDiscarded
	}
	if _, err := api.ReplayDeadLetter(c.UserContext(), dl, v.ID, state, operator); err != nil {
		return err
	}
	h.log.Info("dead letter replayed", "request_id", server.RequestID(c), "command", v.ID, "by", operator)
	h.deps.Notify()
	return h.afterAction(c, "replayed")
}

// handleDiscard gives up on the dead letter, with the operator's reason,
// through the admin route's discard.
func (h *handlers) handleDiscard(c *fiber.Ctx) error {
	dl, v, err := h.deadLetter(c)
	if err != nil {
		return err
	}
	operator := current(c).operator
	if err := api.DiscardDeadLetter(c.UserContext(), dl, v.ID, strings.TrimSpace(c.FormValue("reason")), operator); err != nil {
		return err
	}
	h.log.Info("dead letter discarded", "request_id", server.RequestID(c), "command", v.ID, "by", operator)
	return h.afterAction(c, "discarded")
}

// afterAction shows the command as it is now, saying what was done.
func (h *handlers) afterAction(c *fiber.Ctx, done string) error {
	_, v, err := h.deadLetter(c)
	if err != nil {
		return err
	}
	v.Done = done
	return h.render(c, fiber.StatusOK, "deadletter.html", "Dead letter "+done, v)
}
