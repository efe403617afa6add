package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// storegate keys import sends a file of keys to a running gateway in parts,
// skipping blank lines and comments, and prints the counts, never a key;
// keys count prints the pool.
func TestKeysCLI_ImportAndCount(t *testing.T) {
	gw := "http://" + startDemoGateway(t, "127.0.0.1:1")
	t.Setenv("STOREGATE_ADMIN_TOKEN", "demo-admin-token-DO-NOT-USE")
	var file strings.Builder
	file.WriteString("# keys from the publisher\n\n")
	const n = 2500 // three parts
	for i := range n {
		fmt.Fprintf(&file, "  SECRET-%05d  \n", i)
	}
	file.WriteString("SECRET-00001\n") // twice in the file
	path := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"keys", "import", "--sku", "110101_steam", "--url", gw, path}, "110101_steam: 2500 added, 1 duplicate, 2500 available\n"},
		{[]string{"keys", "import", path, "--url", gw, "--sku", "110101_steam"}, "110101_steam: 0 added, 2501 duplicate, 2500 available\n"},
		{[]string{"keys", "count", "--sku", "110101_steam", "--url", gw}, "110101_steam: 2500 available, 0 assigned, 0 revoked\n"},
	}
	for _, tt := range tests {
		out, err := cli(t, tt.args...)
		if err != nil || out != tt.want {
			t.Errorf("storegate %s: %q %v, want %q", strings.Join(tt.args, " "), out, err, tt.want)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "count", "--sku", "crystals_100", "--url", gw}, "404 NOT_FOUND: the catalog has no game_key SKU crystals_100 (sku)"},
		{[]string{"keys", "import", "--sku", "110101_steam", "--url", gw, writeFile(t, "ok-1\nSECRET WITH SPACE\n")}, "line 2 is not a key"},
		{[]string{"keys", "import", "--sku", "110101_steam", "--url", gw, writeFile(t, "# none\n")}, "holds no key"},
	} {
		out, err := cli(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("storegate %s: %q %v, want an error saying %q", strings.Join(tt.args, " "), out, err, tt.want)
		}
	}
}

func TestKeysCLI_Usage(t *testing.T) {
	t.Setenv("STOREGATE_ADMIN_TOKEN", "")
	for _, args := range [][]string{{"keys"}, {"keys", "frob"}, {"keys", "count"}, {"keys", "import", "--sku", "x"},
		{"keys", "count", "--sku", "x", "extra"}, {"keys", "count", "--sku", "x"}} {
		if out, err := cli(t, args...); err == nil {
			t.Errorf("storegate %v: no error\n%s", args, out)
		}
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
