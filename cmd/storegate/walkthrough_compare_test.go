package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// words splits a command line into the argument lists of its pipeline's
// stages, with quotes removed and $NAME, ${NAME} and $(...) expanded.
func (sh *shell) words(line string) ([][]string, error) {
	stages := [][]string{nil}
	var w strings.Builder
	inWord := false
	end := func() {
		if inWord {
			stages[len(stages)-1] = append(stages[len(stages)-1], w.String())
		}
		w.Reset()
		inWord = false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			end()
		case c == '|':
			end()
			stages = append(stages, nil)
		case c == '#' && !inWord:
			i = len(line) // a comment
		case strings.IndexByte(";&<>`", c) >= 0:
			return nil, fmt.Errorf("%q is not part of the shell the walk-through test knows", c)
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unclosed '")
			}
			w.WriteString(line[i+1 : i+1+j])
			i, inWord = i+1+j, true
		case c == '"':
			n, err := sh.doubleQuoted(line[i+1:], &w)
			if err != nil {
				return nil, err
			}
			i, inWord = i+n, true
		case c == '$':
			v, n, err := sh.dollar(line[i:])
			if err != nil {
				return nil, err
			}
			if strings.ContainsAny(v, " \t\n") {
				return nil, fmt.Errorf("%s holds spaces: quote it", line[i:i+n])
			}
			w.WriteString(v)
			i, inWord = i+n-1, true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	end()
	for _, s := range stages {
		if len(s) == 0 {
			return nil, errors.New("an empty stage in a pipeline")
		}
	}
	return stages, nil
}

// doubleQuoted reads up to the closing quote into w and returns how many
// bytes it took, the quote included.
func (sh *shell) doubleQuoted(s string, w *strings.Builder) (int, error) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`, s[i+1]) >= 0:
			w.WriteByte(s[i+1])
			i++
		case c == '$':
			v, n, err := sh.dollar(s[i:])
			if err != nil {
				return 0, err
			}
			w.WriteString(v)
			i += n - 1
		default:
			w.WriteByte(c)
		}
	}
	return 0, errors.New(`unclosed "`)
}

var varRef = regexp.MustCompile(`^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))`)

// dollar expands the $NAME, ${NAME} or $(...) s starts with and returns
// its value and length. An unset variable is a mistake in the docs.
func (sh *shell) dollar(s string) (string, int, error) {
	if strings.HasPrefix(s, "$(") {
		depth, quote := 0, byte(0)
		for i := 1; i < len(s); i++ {
			switch c := s[i]; {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '\'' || c == '"':
				quote = c
			case c == '(':
				depth++
			case c == ')':
				if depth--; depth == 0 {
					out, _, err := sh.eval(s[2:i])
					return strings.TrimRight(out, "\n"), i + 1, err
				}
			}
		}
		return "", 0, errors.New("unclosed $(")
	}
	m := varRef.FindStringSubmatch(s)
	if m == nil {
		return "", 0, fmt.Errorf("a lone $ in %q", s)
	}
	name := m[1] + m[2]
	v, ok := sh.vars[name]
	if !ok {
		return "", 0, fmt.Errorf("$%s is not set: the walk-through must set it", name)
	}
	return v, len(m[0]), nil
}

// expandWord is the value of an assignment's right-hand side.
func (sh *shell) expandWord(s string) (string, error) {
	stages, err := sh.words(s)
	if err != nil {
		return "", err
	}
	if len(stages) != 1 || len(stages[0]) != 1 {
		return "", fmt.Errorf("%q is not one word: quote it", s)
	}
	return stages[0][0], nil
}

// compareOutput says how got differs from the output the docs show, or "".
// A status line and header lines are compared when shown; a JSON body as
// JSON (shown keys only, "..." for any value); other text line by line,
// with spaces collapsed and ... for any text.
func compareOutput(want []string, got string) string {
	got = strings.ReplaceAll(got, "\r\n", "\n")
	if strings.HasPrefix(want[0], "HTTP/") {
		head, body, _ := strings.Cut(got, "\n\n")
		lines := strings.Split(head, "\n")
		if lines[0] != want[0] {
			return fmt.Sprintf("status %q, want %q", lines[0], want[0])
		}
		want, got = want[1:], body
		for len(want) > 0 && want[0] != "" {
			if !containsLine(lines[1:], want[0]) {
				return fmt.Sprintf("no header %q", want[0])
			}
			want = want[1:]
		}
		if len(want) > 0 {
			want = want[1:] // the blank line
		}
	}
	text := strings.Join(want, "\n")
	if t := strings.TrimSpace(text); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
		var w, g any
		if err := json.Unmarshal([]byte(t), &w); err != nil {
			return "the docs' JSON does not parse: " + err.Error()
		}
		if err := json.Unmarshal([]byte(got), &g); err != nil {
			return "the answer is not JSON: " + err.Error()
		}
		return matchJSON("", w, g)
	}
	gotLines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	if len(want) != len(gotLines) && !(len(want) == 0 && got == "") {
		return fmt.Sprintf("%d lines, want %d", len(gotLines), len(want))
	}
	for i := range want {
		if !lineMatches(want[i], gotLines[i]) {
			return fmt.Sprintf("line %d is %q, want %q", i+1, gotLines[i], want[i])
		}
	}
	return ""
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if lineMatches(want, l) {
			return true
		}
	}
	return false
}

var spaces = regexp.MustCompile(`\s+`)

func lineMatches(want, got string) bool {
	norm := func(s string) string { return strings.TrimSpace(spaces.ReplaceAllString(s, " ")) }
	pattern := strings.ReplaceAll(regexp.QuoteMeta(norm(want)), `\.\.\.`, ".*")
	return regexp.MustCompile("^" + pattern + "$").MatchString(norm(got))
}

// matchJSON says where got differs from want, or "".
func matchJSON(path string, want, got any) string {
	if want == "..." {
		return ""
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: %v, want an object", path, got)
		}
		for k, v := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Sprintf("%s.%s: missing", path, k)
			}
			if p := matchJSON(path+"."+k, v, gv); p != "" {
				return p
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: %v, want %d elements", path, got, len(w))
		}
		for i := range w {
			if p := matchJSON(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]); p != "" {
				return p
			}
		}
		return ""
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Sprintf("%s: %v, want %v", path, got, want)
	}
	return ""
}

// The comparison fails where the docs and the answer differ.
func TestCompareOutput(t *testing.T) {
	for _, tc := range []struct {
		want []string
		got  string
		ok   bool
	}{
		{[]string{"HTTP/1.1 204 No Content"}, "HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", true},
		{[]string{"HTTP/1.1 204 No Content"}, "HTTP/1.1 200 OK\r\n\r\n", false},
		{[]string{"HTTP/1.1 401 Unauthorized", "Content-Type: application/json", "", `{"error":{"code":"X"}}`},
			"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":\"X\",\"message\":\"m\"}}", true},
		{[]string{"HTTP/1.1 401 Unauthorized", "Content-Type: text/plain"}, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\r\n", false},
		{[]string{`{"a":1,"at":"..."}`}, `{"a":1,"at":"2026-01-01","extra":true}`, true},
		{[]string{`{"a":1}`}, `{"a":2}`, false},
		{[]string{`{"a":[1,2]}`}, `{"a":[1]}`, false},
		{[]string{`{"a":1,`, ` "b":2}`}, `{"b":2,"a":1}`, true},
		{[]string{`{"b":2}`}, `{"a":1}`, false},
		{[]string{"Authorization: Signature ..."}, "Authorization: Signature 00ff\n", true},
		{[]string{"DIED AT  ID  KIND", "0 dead letter(s)"}, "DIED AT    ID   KIND\n0 dead letter(s)\n", true},
		{[]string{"0 dead letter(s)"}, "1 dead letter(s)\n", false},
		{[]string{"one", "two"}, "one\n", false},
	} {
		if problem := compareOutput(tc.want, tc.got); (problem == "") != tc.ok {
			t.Errorf("compareOutput(%q, %q) = %q, want ok=%v", tc.want, tc.got, problem, tc.ok)
		}
	}
}

// The shell the walk-throughs use: quotes, variables and pipelines.
func TestShellWords(t *testing.T) {
	sh := &shell{t: t, vars: map[string]string{"GW": "http://h", "T": "a b", "N": "7"}}
	for _, tc := range []struct {
		line string
		want [][]string
	}{
		{`curl -s $GW/x -H "Authorization: Bearer $T"`, [][]string{{"curl", "-s", "http://h/x", "-H", "Authorization: Bearer a b"}}},
		{`printf '%s' "$N" | sed -E 's/7/8/'   # a comment`, [][]string{{"printf", "%s", "7"}, {"sed", "-E", "s/7/8/"}}},
		{`x '{"id":'"$N"'}' ${N}`, [][]string{{"x", `{"id":7}`, "7"}}},
		{`x "\"$N\""`, [][]string{{"x", `"7"`}}},
	} {
		got, err := sh.words(tc.line)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("words(%s) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
	for _, line := range []string{`x $UNSET`, `x $T`, `x > file`, `x 'open`, `x | | y`} {
		if got, err := sh.words(line); err == nil {
			t.Errorf("words(%s) = %q, want an error", line, got)
		}
	}
}
