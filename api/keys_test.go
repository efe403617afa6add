package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"storegate/internal/gatewaytest"
)

func TestKeys_ImportAndCount(t *testing.T) {
	var logs bytes.Buffer
	g := gatewaytest.New(t, gatewaytest.WithLog(&logs), gatewaytest.WithSource(gatewaytest.XsollaSource("xs", "")),
		gatewaytest.WithCommerce(), gatewaytest.WithGameKeys())
	path := "/admin/v1/keys/" + gatewaytest.KeySKU
	tests := []struct {
		name, method, path, token, body string
		status                          int
		want                            map[string]any
		code                            string
	}{
		{"import three", "POST", path, gatewaytest.AdminToken, `{"keys":["SECRET-KEY-0001","SECRET-KEY-0002","SECRET-KEY-0003"]}`, 200,
			map[string]any{"sku": gatewaytest.KeySKU, "added": 3.0, "duplicate": 0.0, "available": 3.0}, ""},
		{"one again, one new", "POST", path, gatewaytest.AdminToken, `{"keys":["SECRET-KEY-0003","SECRET-KEY-0004"]}`, 200,
			map[string]any{"added": 1.0, "duplicate": 1.0, "available": 4.0}, ""},
		{"the counts", "GET", path, gatewaytest.AdminToken, "", 200,
			map[string]any{"sku": gatewaytest.KeySKU, "available": 4.0, "assigned": 0.0, "revoked": 0.0}, ""},
		{"a key with a space", "POST", path, gatewaytest.AdminToken, `{"keys":["SECRET KEY-0005"]}`, 400, nil, "INVALID_PARAMETER"},
		{"no keys", "POST", path, gatewaytest.AdminToken, `{"keys":[]}`, 400, nil, "INVALID_PARAMETER"},
		{"a SKU that is no game key", "POST", "/admin/v1/keys/crystals_100", gatewaytest.AdminToken, `{"keys":["K-1"]}`, 404, nil, "NOT_FOUND"},
		{"an unknown SKU", "GET", "/admin/v1/keys/nope", gatewaytest.AdminToken, "", 404, nil, "NOT_FOUND"},
		{"no admin token", "POST", path, "", `{"keys":["K-1"]}`, 401, nil, "UNAUTHORIZED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := g.Call(t, tt.method, tt.path, tt.token, "", tt.body)
			if status != tt.status || gatewaytest.ErrCode(out) != tt.code {
				t.Fatalf("%d %v, want %d %s", status, out, tt.status, tt.code)
			}
			for k, v := range tt.want {
				if out[k] != v {
					t.Errorf("%s = %v, want %v (answer %v)", k, out[k], v, out)
				}
			}
			if _, echoed := out["keys"]; echoed {
				t.Errorf("the answer echoes the keys: %v", out)
			}
			if strings.Contains(toJSON(out), "SECRET") {
				t.Errorf("the answer holds a key: %v", out)
			}
		})
	}
	if strings.Contains(logs.String(), "SECRET") {
		t.Errorf("a key was logged:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "game keys imported") {
		t.Errorf("the import was not logged:\n%s", logs.String())
	}
}

func TestKeys_WithoutLedger404(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithGameKeys(), func(c *gatewaytest.Config) { c.APIDeps.Keys = nil })
	status, out := g.Call(t, http.MethodGet, "/admin/v1/keys/"+gatewaytest.KeySKU, gatewaytest.AdminToken, "", "")
	if status != 404 || gatewaytest.ErrCode(out) != "NOT_FOUND" {
		t.Fatalf("%d %v", status, out)
	}
}

func toJSON(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}
