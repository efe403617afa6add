package schemas

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"storegate"
)

// shape is what a schema declares of a document's keys: the properties of
// each object and the element of each array. A nil shape declares nothing:
// the schema takes the value as it is (a free-form object such as
// custom_parameters).
type shape struct {
	props    map[string]*shape
	patterns []pattern // patternProperties: matching keys are checked, so kept
	extra    *shape    // additionalProperties given as a schema: other keys are checked, so kept
	keepAll  bool      // additionalProperties given as a schema with nothing more to say
	items    *shape
}

type pattern struct {
	re *regexp.Regexp
	sh *shape
}

// shapeOf reads the keys a JSON Schema declares. oneOf, anyOf and allOf
// alternatives add their properties together: a key any alternative
// declares is one the schema checks.
func shapeOf(raw []byte) (*shape, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	return buildShape(doc)
}

func buildShape(node map[string]any) (*shape, error) {
	sh := &shape{}
	if props, ok := node["properties"].(map[string]any); ok {
		sh.props = map[string]*shape{}
		for k, v := range props {
			sub, err := childShape(v)
			if err != nil {
				return nil, err
			}
			sh.props[k] = sub
		}
	}
	if pats, ok := node["patternProperties"].(map[string]any); ok {
		for expr, v := range pats {
			re, err := regexp.Compile(expr)
			if err != nil {
				return nil, fmt.Errorf("patternProperties %q: %w", expr, err)
			}
			sub, err := childShape(v)
			if err != nil {
				return nil, err
			}
			sh.patterns = append(sh.patterns, pattern{re, sub})
		}
	}
	if extra, ok := node["additionalProperties"].(map[string]any); ok {
		sub, err := buildShape(extra)
		if err != nil {
			return nil, err
		}
		sh.extra, sh.keepAll = sub, sub == nil
	}
	if items, ok := node["items"].(map[string]any); ok {
		sub, err := buildShape(items)
		if err != nil {
			return nil, err
		}
		sh.items = sub
	}
	for _, comb := range []string{"oneOf", "anyOf", "allOf"} {
		alts, _ := node[comb].([]any)
		for _, a := range alts {
			sub, err := childShape(a)
			if err != nil {
				return nil, err
			}
			sh = merge(sh, sub)
		}
	}
	if sh.props == nil && sh.patterns == nil && sh.extra == nil && !sh.keepAll && sh.items == nil {
		return nil, nil
	}
	return sh, nil
}

func childShape(v any) (*shape, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, nil // true, false: nothing declared below
	}
	return buildShape(m)
}

func merge(a, b *shape) *shape {
	if a == nil || b == nil {
		if a == nil {
			return b
		}
		return a
	}
	out := &shape{patterns: append(append([]pattern{}, a.patterns...), b.patterns...),
		extra: merge(a.extra, b.extra), keepAll: a.keepAll || b.keepAll, items: merge(a.items, b.items)}
	if a.props != nil || b.props != nil {
		out.props = map[string]*shape{}
		for k, v := range a.props {
			out.props[k] = v
		}
		for k, v := range b.props {
			out.props[k] = merge(out.props[k], v)
		}
	}
	return out
}

// freeForm reports whether an object passes whole: the schema declares
// none of its keys one by one.
func (sh *shape) freeForm() bool {
	return sh == nil || sh.props == nil && sh.patterns == nil && sh.extra == nil && !sh.keepAll
}

// prune returns v with only the keys sh declares, and whether it dropped
// any. A key that differs from a declared property only in case is refused:
// it is either a mistake or an attempt to be read where the schema did not
// look.
func (sh *shape) prune(v any, path string) (any, bool, error) {
	switch v := v.(type) {
	case []any:
		if sh == nil || sh.items == nil {
			return v, false, nil
		}
		out, dropped := make([]any, len(v)), false
		for i, e := range v {
			var d bool
			var err error
			if out[i], d, err = sh.items.prune(e, join(path, fmt.Sprint(i))); err != nil {
				return nil, false, err
			}
			dropped = dropped || d
		}
		return out, dropped, nil
	case map[string]any:
		if sh.freeForm() {
			return v, false, nil
		}
		out, dropped := make(map[string]any, len(v)), false
		for k, e := range v {
			sub, kept := sh.child(k)
			if !kept {
				if p, ok := sh.foldsTo(k); ok {
					return nil, false, storegate.FieldError("key "+quoteKey(k)+" is not "+quoteKey(p)+": keys are case-sensitive", join(path, clip(k)))
				}
				dropped = true
				continue
			}
			var d bool
			var err error
			if out[k], d, err = sub.prune(e, join(path, k)); err != nil {
				return nil, false, err
			}
			dropped = dropped || d
		}
		return out, dropped, nil
	}
	return v, false, nil
}

// child returns the shape of key k and whether the schema checks it.
func (sh *shape) child(k string) (*shape, bool) {
	if sub, ok := sh.props[k]; ok {
		return sub, true
	}
	for _, p := range sh.patterns {
		if p.re.MatchString(k) {
			return p.sh, true
		}
	}
	if sh.extra != nil || sh.keepAll {
		return sh.extra, true
	}
	return nil, false
}

// foldsTo finds the declared property k equals under Unicode case folding,
// as Go's decoder matches names.
func (sh *shape) foldsTo(k string) (string, bool) {
	for p := range sh.props {
		if strings.EqualFold(p, k) {
			return p, true
		}
	}
	return "", false
}

// covered remembers, per schema and Go type, whether the type reads only
// what the schema declares.
var covered sync.Map // coverKey -> error

type coverKey struct {
	schema string
	typ    reflect.Type
}

// covers checks that v's type never reads into an object the schema takes
// whole: there, a struct would pick out keys that nothing checked. Fields
// the schema does not declare are fine: prune drops their keys, so they
// stay empty.
func (s *Set) covers(name string, sh *shape, v any) error {
	k := coverKey{name, reflect.TypeOf(v)}
	if v, ok := covered.Load(k); ok {
		err, _ := v.(error)
		return err
	}
	var err error
	if missing := undeclared(sh, reflect.TypeOf(v), ""); len(missing) > 0 {
		err = fmt.Errorf("schemas: %s reads fields of %s, which schema %s takes whole", k.typ, strings.Join(missing, ", "), name)
	}
	covered.Store(k, err)
	return err
}

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

func undeclared(sh *shape, t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshaler) || t.Implements(unmarshaler) {
		return nil // a leaf that reads its own value
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if sh == nil || sh.items == nil {
			return undeclared(nil, t.Elem(), join(path, "*"))
		}
		return undeclared(sh.items, t.Elem(), join(path, "*"))
	case reflect.Struct:
		if sh.freeForm() {
			// The schema takes this object whole; a struct would pick keys
			// out of it that nothing checked.
			return []string{join(path, "*")}
		}
		var out []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if f.Anonymous && name == "" {
				out = append(out, undeclared(sh, f.Type, path)...)
				continue
			}
			if name == "" {
				name = f.Name
			}
			// A field the schema does not declare is never filled: prune
			// drops its key.
			if sub, ok := sh.child(name); ok {
				out = append(out, undeclared(sub, f.Type, join(path, name))...)
			}
		}
		return out
	}
	return nil // scalars, maps and any: the schema took the value whole
}
