package main

import (
	"strings"
	"testing"
)

func TestParseConfig_Receipts(t *testing.T) {
	vars := env(map[string]string{"ADMIN": "0123456789abcdef0", "XS_SECRET": "s", "SMTP_PASSWORD": "hunter2-smtp"})
	for _, tc := range []struct {
		name, yaml string
		want       []string // problems; none: valid
	}{
		{"off by default", "", nil},
		{"off needs nothing", "receipts: {host: relay.example.com}", nil},
		{"complete", "receipts: {enabled: true, host: relay.example.com, from: receipts@example.com, username: shop, password: \"${SMTP_PASSWORD}\"}", nil},
		{"enabled without a relay", "receipts: {enabled: true}", []string{"receipts: host is required", "receipts: from"}},
		{"a password in clear", "receipts: {enabled: true, host: 127.0.0.1, tls: none, from: r@example.com, password: \"${SMTP_PASSWORD}\"}",
			[]string{"never sent without TLS"}},
		{"unknown tls", "receipts: {enabled: true, host: h, tls: ssl, from: r@example.com}", []string{`tls "ssl"`}},
		{"negative", "receipts: {max_in_flight: -1}", []string{"receipts: values must not be negative"}},
		{"a target takes the lane's name", "targets:\n  - {name: receipts, kind: ledger}", []string{`"receipts" is the receipts' own lane`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := minimal + tc.yaml
			if strings.HasPrefix(tc.yaml, "targets:") {
				raw = strings.Replace(minimal, "targets:\n  - name: ledger\n    kind: ledger\n", "", 1) + tc.yaml +
					"\n  - {name: ledger, kind: http, http: {url: 'http://127.0.0.1:1', secrets: [whsec_c2VjcmV0]}}\n"
			}
			cfg, err := ParseConfig([]byte(raw), vars)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Receipts.target() != "" && !cfg.Receipts.Enabled {
					t.Error("receipts off, yet a receipt target")
				}
				return
			}
			if err == nil {
				t.Fatalf("no problem reported, want %v", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problems %q lack %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a problem shows the password: %v", err)
			}
		})
	}
}
