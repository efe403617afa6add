package main

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"testing"
)

// docs/configuration.md has one table row per key; it and the config's
// types must list the same keys, so the documentation cannot fall behind.
func TestConfigDocListsEveryKey(t *testing.T) {
	raw, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(string(raw), -1) {
		if documented[m[1]] {
			t.Errorf("docs/configuration.md lists %s twice", m[1])
		}
		documented[m[1]] = true
	}
	keys := configKeys(reflect.TypeFor[Config](), "")
	for _, k := range keys {
		if !documented[k] {
			t.Errorf("docs/configuration.md has no row for %s", k)
		}
	}
	for k := range documented {
		if !slices.Contains(keys, k) {
			t.Errorf("docs/configuration.md documents %s, which the config does not have", k)
		}
	}
	if len(keys) < 80 {
		t.Errorf("found %d keys in Config; the walk over its types is broken", len(keys))
	}
}

// configKeys lists the keys a user can write under t, as the docs write
// them: sources[].partner.auth. A struct is a section; anything else (a
// duration, a list of values, a map) is one key.
func configKeys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Slice && elem(t).Kind() == reflect.Struct {
		return configKeys(elem(t), prefix+"[]")
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshalerType) {
		return []string{prefix}
	}
	var keys []string
	for name, ft := range yamlFields(t) {
		keys = append(keys, configKeys(ft, join(prefix, name))...)
	}
	slices.Sort(keys)
	return keys
}

func elem(t reflect.Type) reflect.Type {
	t = t.Elem()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// The walk itself: a key added to a config struct shows up.
func TestConfigKeys_WalksNestedStructsAndLists(t *testing.T) {
	type inner struct {
		B string `yaml:"b"`
		C []int  `yaml:"c,omitempty"`
	}
	type outer struct {
		A    Duration          `yaml:"a"`
		In   *inner            `yaml:"in"`
		List []inner           `yaml:"list"`
		Map  map[string]string `yaml:"map"`
		Skip string            `yaml:"-"`
	}
	want := []string{"a", "in.b", "in.c", "list[].b", "list[].c", "map"}
	if got := configKeys(reflect.TypeFor[outer](), ""); !slices.Equal(got, want) {
		t.Errorf("keys = %v, want %v", got, want)
	}
}
