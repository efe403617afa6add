package server

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"storegate"
)

// Decode is the one decoding rule of every route: a body must be JSON
// (an empty one reads as {}), then schemas.Decode checks it against the
// schema and decodes exactly what the schema saw.
func (s *Server) Decode(c *fiber.Ctx, schema string, v any) error {
	body := c.BodyRaw()
	if len(body) == 0 {
		body = []byte("{}")
	} else if !IsJSON(c.Get(fiber.HeaderContentType)) {
		return ErrNotJSON
	}
	return s.deps.Schemas.Decode(schema, body, v)
}

// ErrNotJSON refuses a body that is not declared as JSON.
var ErrNotJSON = storegate.Errorf(storegate.CodeUnsupportedMedia, "Content-Type must be application/json")

// IsJSON reports whether a Content-Type is application/json, parameters
// aside.
func IsJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), fiber.MIMEApplicationJSON)
}

// Answer sends a stored answer: its status, and its body as JSON when it
// has one.
func Answer(c *fiber.Ctx, a storegate.Answer) error {
	if len(a.Body) == 0 {
		return c.SendStatus(a.Status)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(a.Status).Send(a.Body)
}

// Checked encodes an answer and validates it against its schema: an answer
// that would fail its schema is never sent.
func (s *Server) Checked(schema string, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, storegate.Internal(err)
	}
	if err := s.deps.Schemas.Validate(schema, body); err != nil {
		return nil, storegate.Internal(errors.New("answer fails its own schema " + schema + ": " + err.Error()))
	}
	return body, nil
}

// SendChecked sends an answer Checked against its schema.
func (s *Server) SendChecked(c *fiber.Ctx, status int, schema string, v any) error {
	body, err := s.Checked(schema, v)
	if err != nil {
		return err
	}
	return Answer(c, storegate.Answer{Status: status, Body: body})
}
