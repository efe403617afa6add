package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"storegate/dispatch"
	"storegate/mapping"
	"storegate/webhooks"
)

// Config is storegate's YAML configuration. Every field documents its
// default, or the component Config that holds it: a default is written
// once, where it is applied, so a zero field the YAML layer has no default
// of its own for goes through to the component. Load fills the YAML layer's
// own defaults and reports every problem with its path.
type Config struct {
	// Listen is the address to serve on. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// MetricsListen is the address /metrics is served on, apart from the
	// senders' listener, or "off". Default 127.0.0.1:9464 (loopback; not
	// 9090, Prometheus's own port).
	MetricsListen string `yaml:"metrics_listen"`
	// LogLevel is debug, info (default), warn or error.
	LogLevel string         `yaml:"log_level"`
	Store    StoreConfig    `yaml:"store"`
	Limits   LimitsConfig   `yaml:"limits"`
	Admin    AdminConfig    `yaml:"admin"`
	Game     GameConfig     `yaml:"game"`
	Dispatch DispatchConfig `yaml:"dispatch"`
	Console  ConsoleConfig  `yaml:"console"`
	// TrustedProxies are load balancer addresses (IPs or CIDRs) whose
	// X-Forwarded-For is believed. Default none.
	TrustedProxies []string       `yaml:"trusted_proxies"`
	Sources        []SourceConfig `yaml:"sources"`
	Targets        []TargetConfig `yaml:"targets"`
	Catalog        []mapping.SKU  `yaml:"catalog"`
	// FulfillOrders turns on POST /v1/players/{id}/fulfill-orders; see
	// config_commerce.go. Default off.
	FulfillOrders FulfillOrdersConfig `yaml:"fulfill_orders"`
	// Receipts e-mails buyers their receipts; see config_receipts.go.
	// Default off.
	Receipts ReceiptsConfig `yaml:"receipts"`
}

// StoreConfig chooses the database.
type StoreConfig struct {
	// DSN is sqlite:PATH (default sqlite:./data/storegate.db) or a
	// postgres:// URL.
	DSN string `yaml:"dsn"`
}

// LimitsConfig bounds requests. Zero fields are left to webhooks.Config,
// whose defaults apply.
type LimitsConfig struct {
	// BodyBytes caps every request body: webhooks.Config.BodyLimit.
	BodyBytes int `yaml:"body_bytes"`
	// UserDeadline bounds a synchronous user check:
	// webhooks.Config.UserDeadline.
	UserDeadline Duration `yaml:"user_deadline"`
}

// AdminConfig protects /admin routes.
type AdminConfig struct {
	// Tokens are the accepted bearer tokens (at least one, 16+ characters).
	Tokens []string `yaml:"tokens"`
}

// GameConfig protects the game-server routes (spend, consume).
type GameConfig struct {
	// Tokens are the accepted bearer tokens, 16+ characters each. Default
	// none: every game-server request is refused.
	Tokens []string `yaml:"tokens"`
}

func (g GameConfig) validate() []string {
	var p []string
	for i, t := range g.Tokens {
		if len(t) < 16 {
			p = append(p, fmt.Sprintf("game.tokens[%d]: a token needs at least 16 characters", i))
		}
	}
	return p
}

// DispatchConfig tunes delivery: the fields of dispatch.Config of the same
// names, whose defaults apply to the zero ones.
type DispatchConfig struct {
	Lease       Duration `yaml:"lease"`
	Timeout     Duration `yaml:"timeout"`
	MaxAttempts int      `yaml:"max_attempts"`
	BackoffBase Duration `yaml:"backoff_base"`
	BackoffMax  Duration `yaml:"backoff_max"`
	// RetryAfterMax caps a target's Retry-After hint.
	RetryAfterMax Duration `yaml:"retry_after_max"`
	// DeferMax is how long a revoke may wait for its grant (spending no
	// attempts) before it becomes a dead letter.
	DeferMax Duration `yaml:"defer_max"`
	// Disabled turns the dispatcher off in this process (commands still queue).
	Disabled bool `yaml:"disabled"`
}

// config is the dispatch.Config these settings stand for, zero fields
// included: dispatch.New fills them.
func (d DispatchConfig) config(now func() time.Time) dispatch.Config {
	return dispatch.Config{Lease: d.Lease.D(), Timeout: d.Timeout.D(), MaxAttempts: d.MaxAttempts,
		BackoffBase: d.BackoffBase.D(), BackoffMax: d.BackoffMax.D(), RetryAfterMax: d.RetryAfterMax.D(),
		DeferMax: d.DeferMax.D(), Now: now}
}

// SourceConfig is one sender.
type SourceConfig struct {
	// Name appears in the route (/webhooks/xsolla/NAME). Required:
	// lowercase letters, digits and dashes.
	Name string `yaml:"name"`
	// Kind is xsolla, partner (a distribution partner) or stores (a
	// studio proxying Steam, Epic, Xbox, PlayStation and Twitch events).
	Kind string `yaml:"kind"`
	// Secrets verify signatures; several for rotation. Required.
	Secrets []string `yaml:"secrets"`
	// Target receives the source's commands. Required.
	Target string `yaml:"target"`
	// GrantOn (xsolla) is order_paid (default) or payment.
	GrantOn string `yaml:"grant_on"`
	// AllowIPs are the addresses allowed to call, as IPs or CIDRs, or the
	// word "xsolla" for Xsolla's published ranges, or "any". Default for an
	// xsolla source: "xsolla"; required for a partner; any for stores.
	AllowIPs []string `yaml:"allow_ips"`
	// BodyBytes caps this source's bodies below limits.body_bytes. Optional.
	BodyBytes int `yaml:"body_bytes"`
	// LinkParameters are sent back as custom_parameters on transaction-ID
	// linking. Optional.
	LinkParameters map[string]any `yaml:"link_parameters"`
	// Revocation overrides, for this source's orders, what a revoke does
	// with each kind (ledger targets only). Optional.
	Revocation SourceRevocationConfig `yaml:"revocation"`
	// Partner and Stores are the partner and stores kinds' own settings.
	Partner *PartnerConfig `yaml:"partner"`
	Stores  *StoresConfig  `yaml:"stores"`
}

// Duration is a time.Duration written as "2s" or "1h".
type Duration time.Duration

// UnmarshalYAML reads a duration. Its error is a *yaml.TypeError, so that
// decoding goes on and every other problem is reported too.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("%q is not a duration like 500ms, 2s or 1h", n.Value)}}
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// LoadConfig reads, expands, decodes and validates a config file. Its
// error lists every problem, each with the file's name and its line.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseConfig(path, raw, os.LookupEnv)
}

// ParseConfig is LoadConfig on bytes, with the environment given.
func ParseConfig(raw []byte, env func(string) (string, bool)) (*Config, error) {
	return parseConfig("", raw, env)
}

// parseConfig reports every problem at once, in three passes: unset
// variables, then unknown keys and values of the wrong kind, then what
// Config.validate finds. A problem a pass explains is not repeated by the
// next (the empty value of an unset variable is not reported as empty).
func parseConfig(file string, raw []byte, env func(string) (string, bool)) (*Config, error) {
	ps := newProblems(file)
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		ps.list = append(ps.list, syntaxProblem(err))
		return nil, ps.err()
	}
	expand(&root, "", env, ps)
	ps.seal()
	ps.checkShape(&root, reflect.TypeFor[Config](), "", 0)
	ps.seal()
	var cfg Config
	if root.Kind != 0 {
		if err := root.Decode(&cfg); err != nil && len(ps.list) == 0 {
			ps.add(0, "", err.Error()) // checkShape should have found it first
		}
	}
	cfg.setDefaults()
	for _, p := range cfg.validate() {
		ps.addChecked(p)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${VAR} in every scalar value (never in keys) with the
// environment's value. Every unset variable is a problem reported with its
// path; the value itself is never reported, since it may be a secret.
func expand(n *yaml.Node, path string, env func(string) (string, bool), problems *problems) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expand(c, path, env, problems)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expand(n.Content[i+1], join(path, n.Content[i].Value), env, problems)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expand(c, path+"["+strconv.Itoa(i)+"]", env, problems)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v, ok := env(name)
			if !ok {
				problems.add(n.Line, path, "environment variable "+name+" is not set")
			}
			return v
		})
		n.Style = yaml.DoubleQuotedStyle // an expanded value is a string, whatever it looks like
		n.Tag = "!!str"
	}
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.MetricsListen == "" {
		c.MetricsListen = "127.0.0.1:9464"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.Store.DSN == "" {
		c.Store.DSN = "sqlite:./data/storegate.db"
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.Kind == "xsolla" && s.GrantOn == "" {
			s.GrantOn = mapping.XsollaOrderPaid
		}
		if s.Kind == "xsolla" && len(s.AllowIPs) == 0 {
			s.AllowIPs = []string{"xsolla"}
		}
	}
	c.setCommerceDefaults()
}

var sourceName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (c *Config) validate() []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q is not host:port", c.Listen)
	}
	if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil && c.MetricsListen != "off" {
		add("metrics_listen: %q is not host:port or off", c.MetricsListen)
	}
	if c.MetricsListen == c.Listen {
		add("metrics_listen: %q is the senders' listener; /metrics needs an address of its own", c.MetricsListen)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	if !strings.HasPrefix(c.Store.DSN, "sqlite:") && !strings.HasPrefix(c.Store.DSN, "postgres://") && !strings.HasPrefix(c.Store.DSN, "postgresql://") {
		add("store.dsn: want sqlite:PATH or postgres://...")
	}
	// Zero limits are webhooks.Config's defaults, which are in range.
	if c.Limits.BodyBytes != 0 && (c.Limits.BodyBytes < 1024 || c.Limits.BodyBytes > 16<<20) {
		add("limits.body_bytes: %d is outside 1024..16777216", c.Limits.BodyBytes)
	}
	if c.Limits.UserDeadline < 0 || c.Limits.UserDeadline.D() > 10*time.Second {
		add("limits.user_deadline: must be between 0 and 10s")
	}
	if len(c.Admin.Tokens) == 0 {
		add("admin.tokens: at least one token is required")
	}
	for i, t := range c.Admin.Tokens {
		if len(t) < 16 {
			add("admin.tokens[%d]: a token needs at least 16 characters", i)
		}
	}
	p = append(p, c.Game.validate()...)
	p = append(p, c.Console.validate()...)
	for i, tp := range c.TrustedProxies {
		if _, err := parsePrefix(tp); err != nil {
			add("trusted_proxies[%d]: %v", i, err)
		}
	}
	d := c.Dispatch
	if d.MaxAttempts < 0 || d.Lease < 0 || d.Timeout < 0 || d.BackoffBase < 0 || d.BackoffMax < 0 ||
		d.RetryAfterMax < 0 || d.DeferMax < 0 {
		add("dispatch: values must not be negative")
	}
	// Compared as serve will use them, defaults included.
	if eff := d.config(nil).WithDefaults(); eff.Timeout >= eff.Lease {
		add("dispatch.timeout: %v must be shorter than dispatch.lease (%v)", eff.Timeout, eff.Lease)
	}

	targets := map[string]string{}
	ledgers := 0
	for i, t := range c.Targets {
		path := fmt.Sprintf("targets[%d]", i)
		if !sourceName.MatchString(t.Name) {
			add("%s.name: %q must be lowercase letters, digits and dashes", path, t.Name)
		}
		if _, dup := targets[t.Name]; dup {
			add("%s.name: %q is used twice", path, t.Name)
		}
		targets[t.Name] = t.Kind
		switch t.Kind {
		case "ledger":
			ledgers++
			if ledgers > 1 {
				add("%s.kind: only one ledger target is allowed", path)
			}
			if t.PlayerPattern != "" {
				if _, err := regexp.Compile(t.PlayerPattern); err != nil {
					add("%s.player_pattern: %v", path, err)
				}
			}
			p = append(p, t.validateLedger(path)...)
		case "ags", "http":
		default:
			add("%s.kind: %q is not a known target kind (ledger, ags, http)", path, t.Kind)
		}
		p = append(p, validateTarget(path, t)...)
		if t.Breaker.Failures < 0 || t.Breaker.OpenFor < 0 || t.Breaker.Probes < 0 {
			add("%s.breaker: values must not be negative", path)
		}
	}

	names := map[string]bool{}
	for i, s := range c.Sources {
		path := fmt.Sprintf("sources[%d]", i)
		if !sourceName.MatchString(s.Name) {
			add("%s.name: %q must be lowercase letters, digits and dashes", path, s.Name)
		}
		if names[s.Name] {
			add("%s.name: %q is used twice", path, s.Name)
		}
		names[s.Name] = true
		p = append(p, c.validateCommerce(path, s)...)
		switch s.Kind {
		case "xsolla":
			if s.GrantOn != mapping.XsollaOrderPaid && s.GrantOn != mapping.XsollaPayment {
				add("%s.grant_on: %q is not order_paid or payment", path, s.GrantOn)
			}
		case "partner", "stores":
		default:
			add("%s.kind: %q is not a known source kind (xsolla, partner, stores)", path, s.Kind)
		}
		if len(s.Secrets) == 0 {
			add("%s.secrets: at least one secret is required", path)
		}
		for j, sec := range s.Secrets {
			if sec == "" {
				add("%s.secrets[%d]: empty (is its environment variable empty?)", path, j)
			}
		}
		if _, ok := targets[s.Target]; !ok {
			add("%s.target: %q is not a configured target", path, s.Target)
		}
		if _, err := allowList(s.AllowIPs); err != nil {
			add("%s.allow_ips: %v", path, err)
		}
		if s.BodyBytes < 0 {
			add("%s.body_bytes: must not be negative", path)
		}
		p = append(p, s.Revocation.validate(path, targets[s.Target])...)
	}
	p = append(p, c.validateCustomRevocation()...)
	p = append(p, c.validateReceipts()...)
	if _, err := mapping.NewCatalog(c.Catalog); err != nil {
		add("%v", err)
	}
	return append(p, c.validateFulfillOrders()...)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// allowList parses a source's allow_ips. nil means any address.
func allowList(items []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, it := range items {
		switch it {
		case "any":
			if len(items) > 1 {
				return nil, errors.New(`"any" cannot be combined with other entries`)
			}
			return nil, nil
		case "xsolla":
			out = append(out, webhooks.XsollaRanges()...)
		default:
			p, err := parsePrefix(it)
			if err != nil {
				return nil, fmt.Errorf("%q: %v", it, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}
