package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/adapters/mail"
	"storegate/api"
	"storegate/api/console"
	"storegate/dispatch"
	"storegate/ledger"
	"storegate/mapping"
	"storegate/metrics"
	"storegate/schemas"
	"storegate/server"
	"storegate/signing"
	"storegate/store"
	"storegate/store/engine"
	"storegate/webhooks"
)

// Gateway is one running storegate: the store, the HTTP app and the
// dispatcher, wired from a Config. cmd/storegate is the only place that knows
// every package.
type Gateway struct {
	App        *fiber.App
	DB         *store.DB
	Ledger     *ledger.Ledger
	Dispatcher *dispatch.Dispatcher
	Metrics    *metrics.Metrics
	health     *console.HealthFeed
	log        *slog.Logger
	cfg        *Config
	closers    []io.Closer // clients of external services, closed last
}

// Options are the parts of a gateway tests replace.
type Options struct {
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log receives the logs. Default: JSON on stderr at the config's level.
	Log *slog.Logger
}

// NewGateway opens the store (running migrations) and builds everything.
func NewGateway(ctx context.Context, cfg *Config, opt Options) (*Gateway, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	log := opt.Log
	if log == nil {
		log = newLogger(os.Stderr, cfg.LogLevel)
	}
	catalog, err := mapping.NewCatalog(cfg.Catalog)
	if err != nil {
		return nil, err
	}
	set, err := schemas.Load()
	if err != nil {
		return nil, err
	}
	// The metrics watch the store's commits and count its outbox at each
	// scrape: made first, they read db once it is open.
	var db *store.DB
	m := metrics.New(func(ctx context.Context) (map[storegate.State]int, error) { return db.Depth(ctx) })
	db, err = store.Open(ctx, engine.Config{DSN: cfg.Store.DSN, Now: opt.Now, Observer: m, Migrations: tables()})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	g := &Gateway{DB: db, Metrics: m, log: log, cfg: cfg}

	// Each remote dependency has its breaker inside its client (the
	// targets' own, the revocation service's, the connectors'); the ledger,
	// in the store's own database, has none.
	onBreaker := func(name, from, to string) {
		if from != "" {
			log.Warn("breaker state changed", "dependency", name, "from", from, "to", to)
		}
		g.Metrics.BreakerChanged(name, from, to)
	}
	lanes := map[string]dispatch.Lane{}
	users := map[string]webhooks.Users{}
	attributes, pinCodes := map[string]webhooks.Attributes{}, map[string]webhooks.PinCodes{}
	gameKeys := map[string]webhooks.GameKeys{}
	wallets := map[string]webhooks.Wallets{}
	for _, t := range cfg.Targets {
		var target remote
		switch t.Kind {
		case "ledger":
			l, closer, err := newLedger(db, t, cfg.sourceRules(t.Name), opt.Now, onBreaker)
			if closer != nil {
				g.closers = append(g.closers, closer)
			}
			if err != nil {
				g.Close()
				return nil, err
			}
			g.Ledger, target = l, l
			lanes[t.Name] = dispatch.Lane{Target: l, Applier: l}
			// A partner's payment takes its game keys and its debit in a
			// virtual currency as it is accepted, on every dialect, so its
			// answer can list the keys and no grant goes out unpaid.
			gameKeys[t.Name], wallets[t.Name] = l, l
			db.HoldOnPay(t.Name, l)
		default: // ags, http
			if target, err = remoteTarget(t, set, opt.Now, onBreaker); err != nil {
				g.Close()
				return nil, fmt.Errorf("target %s: %w", t.Name, err)
			}
			lanes[t.Name] = dispatch.Lane{Target: target, MaxInFlight: t.client().WithDefaults().MaxInFlight}
		}
		users[t.Name] = target
		// Attributes and pin codes are asked of the target itself: an
		// attribute is an extra that never holds a player up, and a key is
		// the answer Xsolla waits for.
		if a, ok := target.(webhooks.Attributes); ok {
			attributes[t.Name] = a
		}
		if p, ok := target.(webhooks.PinCodes); ok {
			pinCodes[t.Name] = p
		}
	}

	if cfg.Receipts.Enabled {
		// The receipts read their grants' state from the outbox and their
		// keys from the ledger, when there is one, as they are sent.
		var keys mail.Keys
		if g.Ledger != nil {
			keys = g.Ledger
		}
		receipts, err := mail.New(cfg.Receipts.config(opt.Now, onBreaker), db, keys)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("receipts: %w", err)
		}
		lanes[receiptsLane] = dispatch.Lane{Target: receipts, MaxInFlight: cfg.Receipts.maxInFlight()}
	}
	g.Dispatcher, err = dispatch.New(db, lanes, cfg.Dispatch.config(opt.Now), g.Metrics, log.With("component", "dispatch"))
	if err != nil {
		g.Close()
		return nil, err
	}
	if g.Ledger != nil && len(catalog.GameKeys()) > 0 {
		g.Metrics.WatchKeys(func(ctx context.Context) (map[string]int64, error) {
			return g.Ledger.KeysAvailable(ctx, catalog.GameKeys())
		})
	}
	// The embedded ledger's commands apply as they are accepted (SQLite),
	// unless delivery is off in this process: then every command waits.
	for _, t := range cfg.Targets {
		if t.Kind == "ledger" && !cfg.Dispatch.Disabled {
			db.ApplyOnAccept(t.Name, g.Ledger)
		}
	}

	var xsolla []webhooks.XsollaSource
	for _, s := range cfg.Sources {
		allow, err := allowList(s.AllowIPs)
		if err != nil {
			g.Close()
			return nil, err
		}
		switch s.Kind {
		case "xsolla":
			v, err := signing.NewXsolla(s.Secrets...)
			if err != nil {
				g.Close()
				return nil, fmt.Errorf("source %s: %w", s.Name, err)
			}
			xsolla = append(xsolla, webhooks.XsollaSource{GrantOn: s.GrantOn, LinkParameters: s.LinkParameters,
				Source: webhooks.Source{Name: s.Name, Verifier: v, Target: s.Target, AllowIPs: allow, BodyLimit: s.BodyBytes,
					Receipts: cfg.Receipts.target()}})
		}
	}
	trusted, err := allowList(cfg.TrustedProxies)
	if err != nil {
		g.Close()
		return nil, err
	}
	partners, stores, fulfill, err := commerce(cfg, opt.Now, onBreaker)
	if err != nil {
		g.Close()
		return nil, err
	}
	srv := server.New(server.Config{BodyLimit: cfg.Limits.BodyBytes, TrustedProxies: trusted, Now: opt.Now},
		server.Deps{Ready: db, Schemas: set, Metrics: g.Metrics, Log: log})
	webhooks.Mount(srv, webhooks.Config{UserDeadline: cfg.Limits.UserDeadline.D()}, webhooks.Deps{Inbox: db, Users: users,
		Attributes: attributes, PinCodes: pinCodes, Catalog: catalog, Notify: g.Dispatcher.Notify, Xsolla: xsolla,
		Partners: partners, Stores: stores, Orders: db, Carts: db, Keys: gameKeys, Wallets: wallets})
	apiDeps := api.Deps{DeadLetters: db, Orders: db, FulfillOrders: fulfill, Inbox: db, Catalog: catalog, Notify: g.Dispatcher.Notify}
	if g.Ledger != nil {
		apiDeps.Economy, apiDeps.Keys = g.Ledger, g.Ledger
	}
	api.Mount(srv, api.Config{AdminTokens: cfg.Admin.Tokens, GameTokens: cfg.Game.Tokens}, apiDeps)
	var sourceNames, targetNames []string
	for _, s := range cfg.Sources {
		sourceNames = append(sourceNames, s.Name)
	}
	for _, t := range cfg.Targets {
		targetNames = append(targetNames, t.Name)
	}
	g.health = console.NewHealthFeed(console.HealthFeedConfig{Counters: g.Metrics, Backlogs: db, Sources: sourceNames,
		Targets: targetNames, Now: opt.Now})
	consoleDeps := console.Deps{Orders: db, Lookups: db, DeadLetters: db, Catalog: catalog, Notify: g.Dispatcher.Notify, Health: g.health}
	if g.Ledger != nil {
		consoleDeps.Economy, consoleDeps.Keys = g.Ledger, g.Ledger
	}
	console.Mount(srv, cfg.Console.config(cfg.Admin.Tokens, opt.Now), consoleDeps)
	g.App = srv.App()
	return g, nil
}

// Serve serves the routes on ln, /metrics on metrics (when not nil), and
// runs the dispatcher until ctx is done, then shuts down gracefully: the
// listeners stop, requests in flight finish, deliveries in flight are
// recorded, and the store's queued writes commit.
func (g *Gateway) Serve(ctx context.Context, ln, metrics net.Listener) error {
	dctx, stopDispatch := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if !g.cfg.Dispatch.Disabled {
		wg.Add(1)
		go func() { defer wg.Done(); g.Dispatcher.Run(dctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); g.health.Run(dctx) }()
	served := make(chan error, 2)
	go func() { served <- g.App.Listener(ln) }()
	g.log.Info("storegate serving", "addr", ln.Addr().String(), "store", string(g.DB.Dialect()))
	scrapes := g.metricsServer()
	if metrics != nil {
		go func() { served <- scrapes.Serve(metrics) }()
		g.log.Info("metrics serving", "addr", metrics.Addr().String())
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	g.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shutdownErr := errors.Join(g.App.ShutdownWithContext(sctx), scrapes.Shutdown(sctx))
	stopDispatch()
	wg.Wait()
	return errors.Join(err, shutdownErr, g.Close())
}

// metricsServer serves /metrics alone, for Prometheus, on a listener apart
// from the senders' (Config.MetricsListen).
func (g *Gateway) metricsServer() *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", g.Metrics.Handler())
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second}
}

// Close releases the store and the clients of external services.
func (g *Gateway) Close() error {
	errs := []error{g.DB.Close()}
	for _, c := range g.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// defaultGCPercent is the collector's target when GOGC is not set: the heap
// may grow to five times what is live before a collection, instead of Go's
// default of twice. The collector's assists fall on the store's single
// writer goroutine, which allocates inside SQLite and sets the gateway's
// ceiling, so fewer collections buy throughput for a larger resident size.
const defaultGCPercent = 400

const serveUsage = `Usage: storegate serve --config FILE [--listen ADDR] [--pprof ADDR]

Runs the gateway: applies pending migrations, serves HTTP and delivers
commands until SIGINT or SIGTERM, then shuts down gracefully.
`

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("serve", serveUsage)
	path := c.fs.String("config", "", "config file (required)")
	listen := c.fs.String("listen", "", "listen address (overrides the config's listen)")
	pprofAddr := c.fs.String("pprof", "", "serve Go's profiler on this loopback address (diagnostics; off by default)")
	if done, err := c.parse(args, stdout, stderr); done || err != nil {
		return err
	}
	if *path == "" || c.fs.NArg() > 0 {
		c.printUsage(stderr)
		return usagef("serve: --config FILE is required, and nothing else")
	}
	if *pprofAddr != "" {
		if err := servePprof(*pprofAddr); err != nil {
			return err
		}
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	g, err := NewGateway(ctx, cfg, Options{Log: newLogger(stderr, cfg.LogLevel)})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		g.Close()
		return err
	}
	var metrics net.Listener
	if cfg.MetricsListen != "off" {
		if metrics, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			ln.Close()
			g.Close()
			return fmt.Errorf("metrics_listen: %w", err)
		}
	}
	return g.Serve(ctx, ln, metrics)
}

const migrateUsage = `Usage: storegate migrate --config FILE

Applies the database migrations this build embeds and exits, saying which
it applied now and which were already applied. serve applies them too; run
migrate as a deploy step before new replicas start.
`

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("migrate", migrateUsage)
	path := c.fs.String("config", "", "config file (required)")
	if done, err := c.parse(args, stdout, stderr); done || err != nil {
		return err
	}
	if *path == "" || c.fs.NArg() > 0 {
		c.printUsage(stderr)
		return usagef("migrate: --config FILE is required, and nothing else")
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		return err
	}
	started := time.Now()
	db, err := store.Open(ctx, engine.Config{DSN: cfg.Store.DSN, Migrations: tables()})
	if err != nil {
		return err
	}
	defer db.Close()
	now, before, err := migrationsSince(ctx, db, started)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied now: %s\nalready applied: %s\n", listOrNone(now), listOrNone(before))
	return nil
}

// migrationsSince splits the applied migrations into those applied at or
// after t (by this run: store.Open applies what is pending) and those
// applied before.
func migrationsSince(ctx context.Context, db *store.DB, t time.Time) (now, before []string, err error) {
	rows, err := db.Query(ctx, "SELECT version, applied_at FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		var at int64
		if err := rows.Scan(&v, &at); err != nil {
			return nil, nil, err
		}
		if at >= t.UnixMicro() {
			now = append(now, v)
		} else {
			before = append(before, v)
		}
	}
	return now, before, rows.Err()
}

func listOrNone(versions []string) string {
	if len(versions) == 0 {
		return "none"
	}
	return strings.Join(versions, ", ")
}
