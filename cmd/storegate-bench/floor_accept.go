package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"regexp"

	"github.com/gofiber/fiber/v2"

	"storegate"
	"storegate/mapping"
	"storegate/metrics"
	"storegate/schemas"
	httpserver "storegate/server"
	"storegate/signing"
	"storegate/webhooks"
)

// acceptApp is floor-accept: the gateway's own HTTP surface (httpserver.New
// with the senders' routes of webhooks.Mount, so the request id, log and metrics middleware, the IP allowlist, the
// signature, the schema, the catalog mapping and the user check all run as
// in the gateway, configured as the bench configures it) over rowInbox.
// allow is the source's IP allowlist (the bench's gateway: loopback).
func acceptApp(l *appendLog, secret string, allow []netip.Prefix) (*fiber.App, error) {
	if secret == "" {
		return nil, errors.New("floor-accept: no signing secret in " + floorSecretEnv)
	}
	verifier, err := signing.NewXsolla(secret)
	if err != nil {
		return nil, err
	}
	catalog, err := mapping.NewCatalog([]mapping.SKU{{SKU: "crystals_100", Type: storegate.ItemCurrency,
		Currency: "CRYSTALS", Amount: 100, Name: "100 Crystals"}})
	if err != nil {
		return nil, err
	}
	set, err := schemas.Load()
	if err != nil {
		return nil, err
	}
	srv := httpserver.New(httpserver.Config{}, httpserver.Deps{
		Ready:   pingable{},
		Schemas: set,
		Metrics: metrics.New(func(context.Context) (map[storegate.State]int, error) { return nil, nil }),
		Log:     slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	webhooks.Mount(srv, webhooks.Config{}, webhooks.Deps{
		Inbox:   rowInbox{l},
		Users:   map[string]webhooks.Users{"ledger": patternUsers{regexp.MustCompile(benchPlayerPattern)}},
		Catalog: catalog,
		Xsolla: []webhooks.XsollaSource{{GrantOn: "order_paid",
			Source: webhooks.Source{Name: "bench", Verifier: verifier, Target: "ledger", AllowIPs: allow}}},
	})
	return srv.App(), nil
}

// rowInbox stores each accepted event with its commands, serialized, in one
// row of floor-sqlite's table, keyed by the event's duplicate key: the least
// an accept can write that is durable, exactly once, and still owes every
// grant. It does not report duplicates (the bench sends none) and does not
// link transactions.
type rowInbox struct{ l *appendLog }

func (i rowInbox) Accept(_ context.Context, ev storegate.Event, cmds []storegate.Command, answer storegate.Answer) (storegate.Answer, bool, error) {
	commands, err := json.Marshal(cmds)
	if err != nil {
		return storegate.Answer{}, false, err
	}
	if err := i.l.put(appendReq{key: ev.Source + "." + ev.Key, body: ev.Body, commands: commands}); err != nil {
		return storegate.Answer{}, false, err
	}
	return answer, false, nil
}

func (rowInbox) Link(context.Context, string, string, string, []byte) ([]byte, error) {
	return nil, errors.New("floor-accept: links are not stored")
}

// patternUsers is the ledger's player_pattern rule alone, as the bench's
// gateway configures it.
type patternUsers struct{ re *regexp.Regexp }

func (u patternUsers) UserExists(_ context.Context, playerID string) (bool, error) {
	return u.re.MatchString(playerID), nil
}

type pingable struct{}

func (pingable) Ping(context.Context) error { return nil }
