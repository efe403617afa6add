// Package schemas holds the JSON Schemas of every payload storegate accepts
// and every answer it gives, embedded in the binary and compiled once at
// start. Validate turns a failure into an INVALID_PARAMETER error that names
// the failing fields.
package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/xeipuuv/gojsonschema"

	"storegate"
)

//go:embed */*.json
var files embed.FS

// Set is the compiled schemas, by name: the file's path without ".json"
// ("xsolla/order_paid", "answers/xsolla_transaction_info").
type Set struct {
	schemas map[string]*gojsonschema.Schema
	shapes  map[string]*shape
}

// Load compiles every embedded schema. An error means a broken schema file:
// the gateway must not start.
func Load() (*Set, error) {
	s := &Set{schemas: map[string]*gojsonschema.Schema{}, shapes: map[string]*shape{}}
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		schema, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(raw))
		if err != nil {
			return fmt.Errorf("schema %s: %w", path, err)
		}
		sh, err := shapeOf(raw)
		if err != nil {
			return fmt.Errorf("schema %s: %w", path, err)
		}
		name := strings.TrimSuffix(path, ".json")
		s.schemas[name], s.shapes[name] = schema, sh
		return nil
	})
	return s, err
}

// Names lists the compiled schemas.
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.schemas))
	for n := range s.schemas {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Has reports whether a schema exists.
func (s *Set) Has(name string) bool { return s.schemas[name] != nil }

// File returns a schema's source, for publishing the contract.
func File(name string) ([]byte, error) { return files.ReadFile(name + ".json") }

// maxReported caps the fields listed in one error.
const maxReported = 10

// Validate checks a JSON document against the named schema. It returns nil or
// a *storegate.Error with code INVALID_PARAMETER whose Fields name the
// failing properties as dotted paths ("items.0.sku").
func (s *Set) Validate(name string, doc []byte) error {
	schema := s.schemas[name]
	if schema == nil {
		return storegate.Internal(fmt.Errorf("schemas: no schema %q", name))
	}
	res, err := schema.Validate(gojsonschema.NewBytesLoader(doc))
	if err != nil {
		return storegate.FieldError("body is not valid JSON")
	}
	if res.Valid() {
		return nil
	}
	return failure(name, res.Errors())
}

// failure names the failing properties as dotted paths, in a stable order.
func failure(name string, errs []gojsonschema.ResultError) error {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field() < errs[j].Field() })
	var fields, msgs []string
	seen := map[string]bool{}
	for _, e := range errs {
		field := e.Field()
		if e.Type() == "required" || e.Type() == "additional_property_not_allowed" {
			if p, ok := e.Details()["property"].(string); ok {
				field = join(field, clip(p))
			}
		}
		if field == "(root)" {
			field = ""
		}
		if seen[field] {
			continue
		}
		seen[field] = true
		if len(fields) < maxReported {
			fields = append(fields, field)
			msgs = append(msgs, describe(field, e))
		}
	}
	return &storegate.Error{Code: storegate.CodeInvalidParameter,
		Message: "payload does not match the " + name + " schema: " + strings.Join(msgs, "; "), Fields: fields}
}

func join(parent, child string) string {
	if parent == "" || parent == "(root)" {
		return child
	}
	return parent + "." + child
}

func describe(field string, e gojsonschema.ResultError) string {
	if field == "" {
		field = "body"
	}
	switch e.Type() {
	case "required":
		return field + " is required"
	case "additional_property_not_allowed":
		return field + " is not allowed"
	}
	return field + ": " + e.Description()
}
