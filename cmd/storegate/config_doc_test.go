package main

import (
	"encoding/json"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"storegate"
	"storegate/ledger"
	"storegate/mapping"
	"storegate/server"
	"storegate/webhooks"
)

// configDoc reads the table of docs/configuration.md: each key's default
// cell, by key.
func configDoc(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\| ([^|]*) \\|").FindAllStringSubmatch(string(raw), -1) {
		if _, dup := rows[m[1]]; dup {
			t.Errorf("docs/configuration.md lists %s twice", m[1])
		}
		rows[m[1]] = m[2]
	}
	return rows
}

// docs/configuration.md has one table row per key; it and the config's
// types must list the same keys, so the documentation cannot fall behind.
func TestConfigDocListsEveryKey(t *testing.T) {
	documented := configDoc(t)
	keys := configKeys(reflect.TypeFor[Config](), "")
	for _, k := range keys {
		if _, ok := documented[k]; !ok {
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

// A default the table shows as a value (a cell starting with `...`) is the
// one that applies: the YAML layer's own (Config.setDefaults) or, for a key
// left zero, the component's, read from its Config through the same
// conversion serve uses. So neither the documentation nor a second copy of
// a number can drift from the code.
func TestConfigDocShowsTheDefaultThatApplies(t *testing.T) {
	actual := actualDefaults(t)
	shown := regexp.MustCompile("^`([^`]*)`")
	doc := configDoc(t)
	for _, key := range slices.Sorted(maps.Keys(doc)) {
		cell := doc[key]
		m := shown.FindStringSubmatch(cell)
		want, checked := actual[key]
		_, unreadable := defaultsNotReadable[key]
		switch {
		case m == nil && (checked || unreadable):
			t.Errorf("%s: the table shows no default value (%q), but the code has one", key, cell)
		case m == nil:
		case checked && m[1] != want:
			t.Errorf("%s: the table says the default is %s; the code applies %s", key, m[1], want)
		case !checked && !unreadable:
			t.Errorf("%s: the table shows the default %s, which no check reads from the code: add it to actualDefaults", key, m[1])
		}
	}
	for key := range defaultsNotReadable {
		if _, checked := actual[key]; checked {
			t.Errorf("%s is checked; take it off defaultsNotReadable", key)
		}
	}
}

// defaultsNotReadable are defaults applied by a component that does not
// show them (no exported default to read), with the component.
var defaultsNotReadable = map[string]string{
	"sources[].body_bytes": "webhooks: a source's limit is at most limits.body_bytes",
}

// actualDefaults is the default that applies to each key that has a value
// for one, written as the table writes it.
func actualDefaults(t *testing.T) map[string]string {
	t.Helper()
	yaml := Config{
		Sources:       []SourceConfig{{Kind: "xsolla"}, {Kind: "partner", Partner: &PartnerConfig{Bonuses: []PartnerBonusConfig{{}}}}},
		FulfillOrders: FulfillOrdersConfig{Connectors: []ConnectorConfig{{}}},
	}
	yaml.setDefaults()
	xsolla, partner, fulfill := yaml.Sources[0], yaml.Sources[1].Partner, yaml.FulfillOrders
	allow, err := json.Marshal(xsolla.AllowIPs)
	if err != nil {
		t.Fatal(err)
	}

	dispatcher := DispatchConfig{}.config(nil).WithDefaults()
	consoleCfg := ConsoleConfig{}.config(nil, nil).WithDefaults()
	breaker := BreakerConfig{}.config().WithDefaults()
	client := TargetConfig{}.client().WithDefaults()
	// "ags.base_url" stands for whatever base_url is.
	agsCfg := (&AGSTargetConfig{BaseURL: "ags.base_url"}).config(TargetConfig{}, nil).WithDefaults()
	studioCfg := (&HTTPTargetConfig{}).config(TargetConfig{}, nil, nil).WithDefaults()
	rules := ledger.DefaultRules()
	grpc := (&CustomGRPCConfig{}).config().WithDefaults()
	receipts := ReceiptsConfig{}.config(nil, nil).WithDefaults()
	receiptsBreaker := ReceiptsConfig{}.Breaker.config().WithDefaults()
	revocationHTTP := (&CustomHTTPConfig{}).config().WithDefaults()
	var spendOrder []string
	for _, p := range ledger.DefaultSpendOrder {
		spendOrder = append(spendOrder, string(p))
	}
	catalog, err := mapping.NewCatalog([]mapping.SKU{{SKU: "potion", Type: storegate.ItemConsumable},
		{SKU: "sword", Type: storegate.ItemDurable}, {SKU: "kit", Type: storegate.ItemBundle, Contents: []mapping.Content{{SKU: "sword"}}}})
	if err != nil {
		t.Fatal(err)
	}
	potion, _ := catalog.Lookup("potion")
	kit, err := catalog.Line("kit", 1)
	if err != nil {
		t.Fatal(err)
	}

	return map[string]string{
		"listen":                      yaml.Listen,
		"metrics_listen":              yaml.MetricsListen,
		"log_level":                   yaml.LogLevel,
		"store.dsn":                   yaml.Store.DSN,
		"limits.body_bytes":           strconv.Itoa(server.Config{}.WithDefaults().BodyLimit),
		"limits.user_deadline":        shortDuration(webhooks.Config{}.WithDefaults().UserDeadline),
		"sources[].partner.token_ttl": shortDuration(webhooks.DefaultTokenTTL),
		"dispatch.lease":              shortDuration(dispatcher.Lease),
		"dispatch.timeout":            shortDuration(dispatcher.Timeout),
		"dispatch.max_attempts":       strconv.Itoa(dispatcher.MaxAttempts),
		"dispatch.backoff_base":       shortDuration(dispatcher.BackoffBase),
		"dispatch.backoff_max":        shortDuration(dispatcher.BackoffMax),
		"dispatch.retry_after_max":    shortDuration(dispatcher.RetryAfterMax),
		"dispatch.defer_max":          shortDuration(dispatcher.DeferMax),
		"dispatch.disabled":           strconv.FormatBool(yaml.Dispatch.Disabled),

		"console.disabled":         strconv.FormatBool(consoleCfg.Disabled),
		"console.session_ttl":      shortDuration(consoleCfg.SessionTTL),
		"console.idle_timeout":     shortDuration(consoleCfg.IdleTimeout),
		"console.sign_in_attempts": strconv.Itoa(consoleCfg.SignInAttempts),
		"console.sign_in_window":   shortDuration(consoleCfg.SignInWindow),
		"console.secure_cookies":   strconv.FormatBool(consoleCfg.SecureCookies),

		"sources[].grant_on":                   xsolla.GrantOn,
		"sources[].allow_ips":                  string(allow),
		"sources[].partner.auth":               partner.Auth,
		"sources[].partner.bonuses[].quantity": strconv.FormatInt(partner.Bonuses[0].Quantity, 10),

		"fulfill_orders.overlap":           shortDuration(fulfill.Overlap.D()),
		"fulfill_orders.wait":              shortDuration(fulfill.Wait.D()),
		"fulfill_orders.timeout":           shortDuration(fulfill.Timeout.D()),
		"fulfill_orders.connectors[].kind": fulfill.Connectors[0].Kind,

		"targets[].breaker.failures":               strconv.Itoa(int(breaker.Failures)),
		"targets[].breaker.probe_after":            shortDuration(breaker.ProbeAfter),
		"targets[].breaker.open_for":               shortDuration(breaker.OpenFor),
		"targets[].breaker.probes":                 strconv.Itoa(int(breaker.Probes)),
		"targets[].revocation.currency":            rules.Currency,
		"targets[].revocation.durable":             rules.Durable,
		"targets[].revocation.consumable":          rules.Consumable,
		"targets[].revocation.custom.namespace":    rules.Namespace,
		"targets[].revocation.custom.grpc.tls":     strconv.FormatBool(grpc.TLS),
		"targets[].revocation.custom.grpc.timeout": shortDuration(grpc.Timeout),
		"targets[].revocation.custom.http.timeout": shortDuration(revocationHTTP.Timeout),
		"targets[].spend_order":                    "[" + strings.Join(spendOrder, ", ") + "]",
		"targets[].timeout":                        shortDuration(client.Timeout),
		"targets[].max_in_flight":                  strconv.Itoa(client.MaxInFlight),
		"targets[].retry.attempts":                 strconv.Itoa(client.Attempts),
		"targets[].retry.wait_min":                 shortDuration(client.RetryWaitMin),
		"targets[].retry.wait_max":                 shortDuration(client.RetryWaitMax),
		"targets[].ags.iam_url":                    agsCfg.IAMURL,
		"targets[].ags.fulfillment_api":            agsCfg.FulfillmentAPI,
		"targets[].ags.revoke_api":                 agsCfg.RevokeAPI,
		"targets[].ags.user_check_path":            agsCfg.UserCheckPath,
		"targets[].ags.source":                     agsCfg.Source,
		"targets[].http.fulfill_path":              studioCfg.FulfillPath,
		"targets[].http.revoke_path":               studioCfg.RevokePath,
		"targets[].http.user_path":                 studioCfg.UserPath,
		"targets[].http.pin_code_path":             studioCfg.PinCodePath,

		"receipts.enabled":             strconv.FormatBool(yaml.Receipts.Enabled),
		"receipts.port":                strconv.Itoa(receipts.Port),
		"receipts.tls":                 receipts.TLS,
		"receipts.timeout":             shortDuration(receipts.Timeout),
		"receipts.max_in_flight":       strconv.Itoa(ReceiptsConfig{}.maxInFlight()),
		"receipts.breaker.failures":    strconv.Itoa(int(receiptsBreaker.Failures)),
		"receipts.breaker.probe_after": shortDuration(receiptsBreaker.ProbeAfter),
		"receipts.breaker.open_for":    shortDuration(receiptsBreaker.OpenFor),
		"receipts.breaker.probes":      strconv.Itoa(int(receiptsBreaker.Probes)),

		"catalog[].use_count":           strconv.FormatInt(potion.UseCount, 10),
		"catalog[].contents[].quantity": strconv.FormatInt(kit.Grants[0].Quantity, 10),
	}
}

// shortDuration writes d as the table does: 1h, 5m, 100ms (not 1h0m0s).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
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
