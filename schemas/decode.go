package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/xeipuuv/gojsonschema"

	"storegate"
)

// Decode is the one way a body becomes a Go value. It parses doc, refusing
// a key that appears twice or that differs from a declared property only in
// case (Go's decoder would take "ITEMS" for "items" where the schema never
// saw it); validates it against the named schema; and hands the decoder only
// the properties the schema declares, so what storegate acts on is exactly
// what the schema checked. Objects the schema leaves free-form (no
// properties) pass whole. v may be nil to validate only.
//
// A v whose fields reach past what the schema declares is a programming
// error, answered as an internal error before anything is decoded.
func (s *Set) Decode(name string, doc []byte, v any) error {
	schema, sh := s.schemas[name], s.shapes[name]
	if schema == nil {
		return storegate.Internal(errors.New("schemas: no schema " + strconv.Quote(name)))
	}
	if v != nil {
		if err := s.covers(name, sh, v); err != nil {
			return storegate.Internal(err)
		}
	}
	tree, err := parse(doc)
	if err != nil {
		return err
	}
	seen, pruned, err := sh.prune(tree, "")
	if err != nil {
		return err
	}
	res, err := schema.Validate(gojsonschema.NewRawLoader(tree))
	if err != nil {
		return storegate.FieldError("body is not valid JSON")
	}
	if !res.Valid() {
		return failure(name, res.Errors())
	}
	if v == nil {
		return nil
	}
	raw := doc
	if pruned {
		if raw, err = json.Marshal(seen); err != nil {
			return storegate.Internal(err)
		}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return storegate.FieldError("body does not decode: "+Problem(err), Field(err))
	}
	return nil
}

// maxDepth bounds nesting; no sender's payload comes near it.
const maxDepth = 64

// parse reads one JSON value with numbers kept as written (json.Number),
// refusing duplicate keys, trailing data and deep nesting.
func parse(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	v, err := parseValue(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, storegate.FieldError("body is not valid JSON: data after the value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder, path string, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, storegate.FieldError("body is not valid JSON")
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	if depth >= maxDepth {
		return nil, storegate.FieldError("body is nested more than "+strconv.Itoa(maxDepth)+" levels deep", path)
	}
	if d == '[' {
		arr := []any{}
		for dec.More() {
			v, err := parseValue(dec, join(path, strconv.Itoa(len(arr))), depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, closing(dec)
	}
	obj := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, storegate.FieldError("body is not valid JSON")
		}
		key := tok.(string)
		if _, dup := obj[key]; dup {
			return nil, storegate.FieldError("key "+quoteKey(key)+" appears twice", join(path, clip(key)))
		}
		if obj[key], err = parseValue(dec, join(path, clip(key)), depth+1); err != nil {
			return nil, err
		}
	}
	return obj, closing(dec)
}

// closing reads the delimiter that ends an object or array.
func closing(dec *json.Decoder) error {
	if _, err := dec.Token(); err != nil {
		return storegate.FieldError("body is not valid JSON")
	}
	return nil
}

// quoteKey quotes a sender's key for a message, clipped so that a huge key
// is not sent back whole.
func quoteKey(k string) string { return strconv.Quote(clip(k)) }

func clip(k string) string {
	const max = 64
	if len(k) <= max {
		return k
	}
	return strings.ToValidUTF8(k[:max], "") + "…"
}

// Problem describes a decoding error in JSON's words, without echoing the
// body.
func Problem(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return "malformed JSON"
	}
	want := "a string"
	switch te.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want = "an integer in range"
	case reflect.Float32, reflect.Float64:
		want = "a number"
	case reflect.Bool:
		want = "true or false"
	case reflect.Slice, reflect.Array:
		want = "an array"
	case reflect.Struct, reflect.Map:
		want = "an object"
	}
	return te.Field + " should be " + want
}

// Field names the field a decoding error is about, if it knows.
func Field(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	return ""
}
