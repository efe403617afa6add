package main

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// problem is one thing wrong with a config file, and where.
type problem struct {
	line int    // 0 when the key is not in the file
	path string // as the user would write it: sources[0].allow_ips
	msg  string
}

// problems collects every problem of one config file, so a user fixes them
// all in one pass. It also knows the line of every key in the file.
type problems struct {
	file    string
	list    []problem
	lines   map[string]int  // path -> line of its key or list item
	covered map[string]bool // paths whose problem an earlier pass reported
}

func newProblems(file string) *problems {
	return &problems{file: file, lines: map[string]int{}, covered: map[string]bool{}}
}

func (ps *problems) add(line int, path, msg string) {
	ps.list = append(ps.list, problem{line: line, path: path, msg: msg})
}

// seal ends a pass: a later pass's problem at or under a path reported so
// far is a consequence (the empty value of an unset variable, the zero value
// of a misspelt one) and is left out.
func (ps *problems) seal() {
	for _, p := range ps.list {
		ps.covered[p.path] = true
	}
}

func (ps *problems) isCovered(path string) bool {
	for ; path != ""; path = parentPath(path) {
		if ps.covered[path] {
			return true
		}
	}
	return false
}

// addChecked adds a problem from Config.validate, written "path: message",
// at the line of its path or of its nearest parent in the file.
func (ps *problems) addChecked(s string) {
	path, msg, _ := strings.Cut(s, ": ")
	key := entryName.ReplaceAllString(path, "") // catalog[0] (gem).currency -> catalog[0].currency
	if !pathLike.MatchString(key) {
		ps.add(0, "", s)
		return
	}
	if ps.isCovered(key) {
		return
	}
	line := 0
	for p := key; p != "" && line == 0; p = parentPath(p) {
		line = ps.lines[p]
	}
	ps.add(line, path, msg)
}

var (
	entryName = regexp.MustCompile(` \([^)]*\)`)
	pathLike  = regexp.MustCompile(`^[A-Za-z0-9_*.\[\]-]+$`)
)

// parentPath drops the last key or index: a.b[2] -> a.b -> a.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// err is nil without problems, else every problem in file order.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	sort.SliceStable(ps.list, func(i, j int) bool {
		a, b := ps.list[i].line, ps.list[j].line
		return a != 0 && (b == 0 || a < b)
	})
	return &configError{file: ps.file, problems: ps.list}
}

// configError lists every problem of a config file, one a line, each as
// FILE:LINE: PATH: what is wrong.
type configError struct {
	file     string
	problems []problem
}

func (e *configError) Error() string {
	name := e.file
	if name == "" {
		name = "config"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s)", name, len(e.problems))
	for _, p := range e.problems {
		b.WriteString("\n" + name)
		if p.line > 0 {
			b.WriteString(":" + strconv.Itoa(p.line))
		}
		if p.path != "" {
			b.WriteString(": " + p.path)
		}
		b.WriteString(": " + p.msg)
	}
	return b.String()
}

// syntaxProblem turns yaml's "yaml: line 3: ..." into a problem at line 3.
func syntaxProblem(err error) problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return problem{line: line, msg: m[2]}
	}
	return problem{msg: msg}
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// checkShape walks n against the Go type t it will be decoded into,
// records the line of every key, and reports unknown keys and values of the
// wrong kind, so that decoding has nothing left to complain about.
func (ps *problems) checkShape(n *yaml.Node, t reflect.Type, path string, depth int) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || depth > 64 || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			ps.checkShape(c, t, path, depth+1)
		}
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		ps.checkValue(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		ps.checkStruct(n, t, path, depth)
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			ps.add(n.Line, path, "want a list")
			return
		}
		for i, c := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			ps.lines[p] = c.Line
			ps.checkShape(c, t.Elem(), p, depth+1)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			ps.add(n.Line, path, "want keys and values")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			ps.lines[p] = n.Content[i].Line
			ps.checkShape(n.Content[i+1], t.Elem(), p, depth+1)
		}
	case reflect.Interface:
	default:
		ps.checkValue(n, t, path)
	}
}

func (ps *problems) checkStruct(n *yaml.Node, t reflect.Type, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		ps.add(n.Line, path, "want keys and values")
		return
	}
	fields := yamlFields(t)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" { // a merge key: its mapping's keys are this one's
			ps.checkShape(v, t, path, depth+1)
			continue
		}
		p := join(path, k.Value)
		ft, ok := fields[k.Value]
		switch {
		case !ok && removedKeys[p] != "":
			ps.add(k.Line, p, "no longer a key: "+removedKeys[p])
			continue
		case !ok:
			ps.add(k.Line, p, "unknown key"+suggest(k.Value, fields))
			continue
		case seen[k.Value] > 0:
			ps.add(k.Line, p, fmt.Sprintf("given twice (first on line %d)", seen[k.Value]))
			continue
		}
		seen[k.Value] = k.Line
		ps.lines[p] = k.Line
		ps.checkShape(v, ft, p, depth+1)
	}
}

// checkValue decodes a single value the way the whole file will be.
func (ps *problems) checkValue(n *yaml.Node, t reflect.Type, path string) {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	var te *yaml.TypeError
	switch {
	case n.Kind != yaml.ScalarNode && !reflect.PointerTo(t).Implements(unmarshalerType):
		ps.add(n.Line, path, "want a single value, not a list or keys")
	case errors.As(err, &te) && reflect.PointerTo(t).Implements(unmarshalerType):
		ps.add(n.Line, path, strings.Join(te.Errors, "; "))
	default:
		ps.add(n.Line, path, fmt.Sprintf("%q is not %s", n.Value, kindName(t.Kind())))
	}
}

func kindName(k reflect.Kind) string {
	switch {
	case k == reflect.Bool:
		return "true or false"
	case k >= reflect.Int && k <= reflect.Int64:
		return "a whole number"
	case k >= reflect.Uint && k <= reflect.Uintptr:
		return "a whole number of zero or more"
	case k == reflect.Float32 || k == reflect.Float64:
		return "a number"
	}
	return "a " + k.String()
}

// yamlFields maps a struct's YAML keys to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case !f.IsExported() || name == "-":
		case strings.Contains(opts, "inline"):
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
		case name == "":
			out[strings.ToLower(f.Name)] = f.Type
		default:
			out[name] = f.Type
		}
	}
	return out
}

// removedKeys say what took the place of keys an older storegate read, so
// an upgraded config is told what to write instead.
var removedKeys = map[string]string{
	"dispatch.workers":      "each target delivers up to its targets[].max_in_flight at once; delete this line",
	"dispatch.breaker_wait": "a target's commands wait for its breaker's next probe (targets[].breaker.probe_after, open_for); delete this line",
}

// suggest names the known key nearest to a misspelt one, if one is near.
func suggest(key string, fields map[string]reflect.Type) string {
	best, dist := "", len(key)/3+1
	for k := range fields {
		if d := editDistance(key, k); d < dist || d == dist && best != "" && k < best {
			best, dist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
