# storegate: `make run` starts the gateway on its embedded defaults,
# `make test` runs every test. Both work on a fresh machine with Go installed.

GO ?= go
BIN := bin/storegate
# make run LISTEN=127.0.0.1:8181 CONFIG=my.yaml serves another address or config.
LISTEN ?= 127.0.0.1:8080
CONFIG ?= examples/storegate.yaml

# Demo secrets for `make run` only. They are public: never use them anywhere real.
export STOREGATE_XSOLLA_SECRET ?= demo-xsolla-secret-DO-NOT-USE
export STOREGATE_ADMIN_TOKEN ?= demo-admin-token-DO-NOT-USE
export STOREGATE_GAME_TOKEN ?= demo-game-token-DO-NOT-USE
export STOREGATE_PARTNER_SECRET ?= demo-partner-secret-DO-NOT-USE
export STOREGATE_STORES_SECRET ?= whsec_ZGVtby1zdG9yZXMtc2VjcmV0LURPLU5PVC1VU0U=
export STOREGATE_PLAYER_TOKEN_KEY ?= demo-player-token-key-DO-NOT-USE-0123

.PHONY: run test build bench lint fuzz clean

run:
	$(GO) run ./cmd/storegate serve --config $(CONFIG) --listen $(LISTEN)

# The version `storegate version` prints: the commit, or a tag on it.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/storegate

test:
	@if [ -z "$$STOREGATE_TEST_POSTGRES_DSN" ]; then \
	  echo "STOREGATE_TEST_POSTGRES_DSN is not set: the PostgreSQL tests are skipped (.ci/run sets it)"; fi
	$(GO) test -race -count=1 ./...

# The load generator builds the gateway, starts it and a bare Fiber handler on
# loopback, and reports requests/s and latency for both. With a PostgreSQL
# server (STOREGATE_BENCH_POSTGRES_DSN, or the local one when it answers) it
# adds rows for PostgreSQL with one and with two replicas. Four floor servers
# (a flushed file, a one-table SQLite, storegate's store storing the event
# alone, the gateway's HTTP checks over a one-table SQLite) say what a durable write costs on the machine.
bench:
	@dsn="$${STOREGATE_BENCH_POSTGRES_DSN:-}"; \
	if [ -z "$$dsn" ] && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
	  dsn="postgres://postgres@127.0.0.1:5432/test?sslmode=disable"; fi; \
	$(GO) run ./cmd/storegate-bench -postgres "$$dsn"

lint:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# Short fuzzing runs of every parser; FUZZTIME=1m for longer.
FUZZTIME ?= 15s
fuzz:
	$(GO) test ./signing -run='^$$' -fuzz=FuzzXsollaVerify -fuzztime=$(FUZZTIME)
	$(GO) test ./signing -run='^$$' -fuzz=FuzzStandardVerify -fuzztime=$(FUZZTIME)
	$(GO) test ./signing -run='^$$' -fuzz=FuzzHMACVerify -fuzztime=$(FUZZTIME)
	$(GO) test ./schemas -run='^$$' -fuzz=FuzzValidate -fuzztime=$(FUZZTIME)
	$(GO) test ./schemas -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME)
	$(GO) test ./webhooks -run='^$$' -fuzz=FuzzXsollaWebhook -fuzztime=$(FUZZTIME)
	$(GO) test ./server -run='^$$' -fuzz=FuzzEdge -fuzztime=$(FUZZTIME)
	$(GO) test ./cmd/storegate -run='^$$' -fuzz=FuzzParseConfig -fuzztime=$(FUZZTIME)

clean:
	rm -rf bin data
