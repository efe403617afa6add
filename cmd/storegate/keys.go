package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"storegate/ledger"
)

// The keys subcommands, like the deadletters ones, call the admin API of a
// running gateway rather than opening the store: the gateway owns the store
// (one SQLite writer; with PostgreSQL, possibly several replicas), and its
// admin API checks the bearer token and logs every import. They never print
// a key.

const keysUsage = `Usage:
  storegate keys import --sku SKU FILE   add the keys in FILE (one per line; - reads standard input)
                                         to a game_key SKU's pool
  storegate keys count  --sku SKU        the pool's keys: available, assigned, revoked

Blank lines and lines starting with # are skipped, and spaces around a key
are trimmed. A key is 1 to 256 printable characters without spaces. A key
already in a pool, or twice in FILE, counts as a duplicate and changes
nothing, so an import can be run again. FILE is sent in parts of at most
1000 keys (the gateway's body limit); each part is added as a whole.

Every subcommand takes --url (default http://127.0.0.1:8080) and reads the
admin token from STOREGATE_ADMIN_TOKEN.
`

// importPart bounds one import request: the gateway's default body limit
// is 64 KiB, and 1000 keys of up to 48 characters stay below it.
const (
	importPartKeys  = 1000
	importPartBytes = 48 << 10
)

func cmdKeys(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, keysUsage)
		return nil
	}
	if len(args) == 0 || (args[0] != "import" && args[0] != "count") {
		fmt.Fprint(stderr, keysUsage)
		return usagef("usage: storegate keys import|count --sku SKU")
	}
	c := newCommand("keys "+args[0], keysUsage)
	base := c.fs.String("url", "http://127.0.0.1:8080", "the gateway's address")
	sku := c.fs.String("sku", "", "the game_key SKU (required)")
	files, err := parseInterleaved(c.fs, args[1:])
	if done, err := c.result(err, stdout, stderr); done || err != nil {
		return err
	}
	wantFiles := map[string]int{"import": 1, "count": 0}[args[0]]
	if *sku == "" || len(files) != wantFiles {
		c.printUsage(stderr)
		return usagef("keys %s: --sku SKU is required%s", args[0], map[bool]string{true: ", and one FILE", false: ", and nothing else"}[wantFiles == 1])
	}
	token := os.Getenv("STOREGATE_ADMIN_TOKEN")
	if token == "" {
		return errors.New("keys: set STOREGATE_ADMIN_TOKEN to an admin token")
	}
	api := adminAPI{base: strings.TrimRight(*base, "/"), token: token, client: &http.Client{Timeout: 30 * time.Second}}
	path := "/admin/v1/keys/" + url.PathEscape(*sku)
	if args[0] == "count" {
		raw, err := api.call(ctx, http.MethodGet, path, nil)
		if err != nil {
			return err
		}
		var p ledger.KeyPool
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("keys: unreadable answer: %w", err)
		}
		fmt.Fprintf(stdout, "%s: %d available, %d assigned, %d revoked\n", p.SKU, p.Available, p.Assigned, p.Revoked)
		return nil
	}
	in := stdin
	if files[0] != "-" {
		f, err := os.Open(files[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	parts, err := readKeys(in)
	if err != nil {
		return err
	}
	var total ledger.KeyImport
	for _, part := range parts {
		body, _ := json.Marshal(map[string][]string{"keys": part})
		raw, err := api.call(ctx, http.MethodPost, path, body)
		if err != nil {
			if total.Added+total.Duplicate > 0 {
				err = fmt.Errorf("%w (the %d keys sent before were imported: run the import again, they count as duplicates)",
					err, total.Added+total.Duplicate)
			}
			return err
		}
		var ans ledger.KeyImport
		if err := json.Unmarshal(raw, &ans); err != nil {
			return fmt.Errorf("keys: unreadable answer: %w", err)
		}
		total.Added, total.Duplicate, total.Available = total.Added+ans.Added, total.Duplicate+ans.Duplicate, ans.Available
	}
	fmt.Fprintf(stdout, "%s: %d added, %d duplicate, %d available\n", *sku, total.Added, total.Duplicate, total.Available)
	return nil
}

// readKeys reads one key per line into parts small enough for one request
// each. A line that is no key fails the whole import before anything is
// sent, naming its line but never its text.
func readKeys(r io.Reader) ([][]string, error) {
	var parts [][]string
	var part []string
	size := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		key := strings.TrimSpace(sc.Text())
		if key == "" || strings.HasPrefix(key, "#") {
			continue
		}
		if !ledger.ValidGameKey(key) {
			return nil, fmt.Errorf("keys: line %d is not a key: 1 to %d printable characters without spaces", n, ledger.MaxKeyLength)
		}
		if len(part) == importPartKeys || size+len(key)+3 > importPartBytes {
			parts, part, size = append(parts, part), nil, 0
		}
		part, size = append(part, key), size+len(key)+3
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("keys: read: %w", err)
	}
	if len(part) > 0 {
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return nil, errors.New("keys: the file holds no key")
	}
	return parts, nil
}
