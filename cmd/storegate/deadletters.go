package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"storegate/store"
)

// The deadletters subcommands call the admin API of a running gateway
// rather than opening the store themselves: the gateway owns the store (one
// SQLite writer; with PostgreSQL, possibly several replicas), its admin API
// is where the bearer token is checked and every replay and discard is
// logged with who did it, and a replay wakes its dispatcher at once.

const deadLettersUsage = `Usage (flags may come before or after the ids):
  storegate deadletters list    [--state dead|discarded] [--target T] [--source S] [--kind fulfill|revoke|receipt]
                                [--player P] [--since T] [--until T] [--limit N] [--cursor C] [--json]
  storegate deadletters show    ID
  storegate deadletters replay  [--by WHO] [--state dead|discarded] ID...
  storegate deadletters replay  [--by WHO] [--target T] [--source S] [--kind K] [--player P]
                                [--since T] [--until T] [--limit N] [--state dead|discarded] [--all]
  storegate deadletters discard [--by WHO] --reason WHY ID

Every subcommand takes --url (default http://127.0.0.1:8080) and reads the
admin token from STOREGATE_ADMIN_TOKEN. Times are RFC 3339 or a duration
back from now (2h = two hours ago). --by defaults to $USER.
`

func cmdDeadLetters(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, deadLettersUsage)
		return nil
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, deadLettersUsage)
		return usagef("usage: storegate deadletters list|show|replay|discard")
	}
	c := newCommand("deadletters "+args[0], deadLettersUsage)
	fs := c.fs
	base := fs.String("url", "http://127.0.0.1:8080", "the gateway's address")
	var f struct {
		state, target, source, kind, player, since, until, cursor, by, reason string
		limit                                                                 int
		all, json                                                             bool
	}
	fs.StringVar(&f.state, "state", "", "dead (default) or discarded")
	fs.StringVar(&f.target, "target", "", "target name")
	fs.StringVar(&f.source, "source", "", "source name")
	fs.StringVar(&f.kind, "kind", "", "fulfill, revoke or receipt")
	fs.StringVar(&f.player, "player", "", "player id")
	fs.StringVar(&f.since, "since", "", "died at or after (RFC 3339, or a duration ago)")
	fs.StringVar(&f.until, "until", "", "died before (RFC 3339, or a duration ago)")
	fs.IntVar(&f.limit, "limit", 0, "at most this many (list: 100, replay: 1000)")
	fs.StringVar(&f.cursor, "cursor", "", "continue a listing")
	fs.BoolVar(&f.json, "json", false, "print the API's JSON")
	fs.BoolVar(&f.all, "all", false, "replay every dead letter")
	fs.StringVar(&f.by, "by", os.Getenv("USER"), "who is acting, for the record")
	fs.StringVar(&f.reason, "reason", "", "why a dead letter is discarded")
	ids, err := parseInterleaved(fs, args[1:])
	if done, err := c.result(err, stdout, stderr); done || err != nil {
		return err
	}
	token := os.Getenv("STOREGATE_ADMIN_TOKEN")
	if token == "" {
		return errors.New("deadletters: set STOREGATE_ADMIN_TOKEN to an admin token")
	}
	api := adminAPI{base: strings.TrimRight(*base, "/"), token: token, client: &http.Client{Timeout: 30 * time.Second}}
	now := time.Now()
	since, err := parseWhen(f.since, now)
	if err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	until, err := parseWhen(f.until, now)
	if err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	if f.by == "" {
		f.by = "cli"
	}

	switch args[0] {
	case "list":
		q := url.Values{}
		for k, v := range map[string]string{"state": f.state, "target": f.target, "source": f.source, "kind": f.kind,
			"player_id": f.player, "since": since, "until": until, "cursor": f.cursor} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if f.limit > 0 {
			q.Set("limit", fmt.Sprint(f.limit))
		}
		raw, err := api.call(ctx, http.MethodGet, "/admin/v1/deadletters?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		if f.json {
			return printJSON(stdout, raw)
		}
		var page store.DeadLetterPage
		if err := json.Unmarshal(raw, &page); err != nil {
			return fmt.Errorf("deadletters: unreadable answer: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DIED AT\tID\tKIND\tTARGET\tPLAYER\tATTEMPTS\tLAST ERROR")
		for _, d := range page.DeadLetters {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.DiedAt.Format(time.RFC3339), d.ID, d.Kind, d.Target, d.PlayerID,
				d.Attempts, clipLine(d.LastError, 80))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d dead letter(s)", len(page.DeadLetters))
		if page.Next != "" {
			fmt.Fprintf(stdout, "; more with --cursor %s", page.Next)
		}
		fmt.Fprintln(stdout)
		return nil

	case "show":
		if len(ids) != 1 {
			return usagef("usage: storegate deadletters show ID")
		}
		raw, err := api.call(ctx, http.MethodGet, "/admin/v1/deadletters/"+url.PathEscape(ids[0]), nil)
		if err != nil {
			return err
		}
		return printJSON(stdout, raw)

	case "replay":
		if len(ids) > 0 {
			if f.all || f.target != "" || f.source != "" || f.kind != "" || f.player != "" || since != "" || until != "" {
				return usagef("deadletters replay: give ids or a filter, not both")
			}
			for _, id := range ids {
				body, _ := json.Marshal(map[string]string{"by": f.by, "state": f.state})
				if _, err := api.call(ctx, http.MethodPost, "/admin/v1/deadletters/"+url.PathEscape(id)+"/replay", body); err != nil {
					return fmt.Errorf("%s: %w", id, err)
				}
				fmt.Fprintf(stdout, "replayed %s\n", id)
			}
			return nil
		}
		body, _ := json.Marshal(map[string]any{"by": f.by, "state": f.state, "target": f.target, "source": f.source,
			"kind": f.kind, "player_id": f.player, "since": since, "until": until, "limit": f.limit, "all": f.all})
		raw, err := api.call(ctx, http.MethodPost, "/admin/v1/deadletters/replay", body)
		if err != nil {
			return err
		}
		var ans struct {
			Replayed []string `json:"replayed"`
			More     bool     `json:"more"`
		}
		if err := json.Unmarshal(raw, &ans); err != nil {
			return fmt.Errorf("deadletters: unreadable answer: %w", err)
		}
		for _, id := range ans.Replayed {
			fmt.Fprintf(stdout, "replayed %s\n", id)
		}
		fmt.Fprintf(stdout, "%d replayed", len(ans.Replayed))
		if ans.More {
			fmt.Fprint(stdout, "; the limit was reached, run it again for more")
		}
		fmt.Fprintln(stdout)
		return nil

	case "discard":
		if len(ids) != 1 || f.reason == "" {
			return usagef("usage: storegate deadletters discard --reason WHY ID")
		}
		body, _ := json.Marshal(map[string]string{"by": f.by, "reason": f.reason})
		if _, err := api.call(ctx, http.MethodPost, "/admin/v1/deadletters/"+url.PathEscape(ids[0])+"/discard", body); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "discarded %s\n", ids[0])
		return nil
	}
	fmt.Fprint(stderr, deadLettersUsage)
	return usagef("unknown deadletters command %q", args[0])
}

// parseInterleaved parses flags wherever they stand among the positional
// arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return rest, nil
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
}

// parseWhen accepts RFC 3339 or a duration back from now, and returns RFC
// 3339 ("" for "").
func parseWhen(v string, now time.Time) (string, error) {
	if v == "" {
		return "", nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.Format(time.RFC3339), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return "", fmt.Errorf("%q is neither an RFC 3339 time nor a duration like 2h", v)
	}
	return now.Add(-d).UTC().Format(time.RFC3339), nil
}

type adminAPI struct {
	base, token string
	client      *http.Client
}

// call sends one admin request and returns the answer's body, or the API's
// error as "STATUS CODE: message".
func (a adminAPI) call(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling the gateway: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Code    string   `json:"code"`
				Message string   `json:"message"`
				Fields  []string `json:"fields"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
			msg := fmt.Sprintf("%d %s: %s", resp.StatusCode, e.Error.Code, e.Error.Message)
			if len(e.Error.Fields) > 0 {
				msg += " (" + strings.Join(e.Error.Fields, ", ") + ")"
			}
			return nil, errors.New(msg)
		}
		return nil, fmt.Errorf("gateway answered %s", resp.Status)
	}
	return raw, nil
}

func printJSON(w io.Writer, raw []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		_, err = w.Write(raw)
		return err
	}
	out.WriteByte('\n')
	_, err := out.WriteTo(w)
	return err
}

func clipLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
