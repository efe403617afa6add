package ledger_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"storegate/internal/pgtest"
	"storegate/ledger"
	"storegate/store"
	"storegate/store/engine"
)

// before is the schema as one folder of migrations held it when the store
// applied the ledger's tables too (testdata/migrations-before-split): the
// databases in service were made by it.
const before = "testdata/migrations-before-split"

// A database made by the migrations of one folder opens with the store's
// and the ledger's sets: nothing is applied twice, nothing fails on what
// exists, the schema ends as a new database's and the rows stay. Each
// starting point stops after a version, as a database made by an older
// build would; "" is every version.
func TestUpgrade_SQLite(t *testing.T) {
	for _, upTo := range []string{"0001_init", "0003_economy", "0005_inline", ""} {
		t.Run("up to "+orAll(upTo), func(t *testing.T) {
			dir, n := t.TempDir(), 0
			testUpgrade(t, "sqlite", func() string { n++; return fmt.Sprintf("sqlite:%s/%d.db", dir, n) }, upTo)
		})
	}
}

func TestUpgrade_Postgres(t *testing.T) {
	for _, upTo := range []string{"0001_init", "0003_economy", ""} {
		t.Run("up to "+orAll(upTo), func(t *testing.T) {
			testUpgrade(t, "postgres", func() string { return pgtest.DSN(t) }, upTo)
		})
	}
}

func orAll(v string) string {
	if v == "" {
		return "all"
	}
	return v
}

// testUpgrade compares a database made by before (up to upTo) and then
// opened by the store with one the store made, each at a fresh DSN.
func testUpgrade(t *testing.T, dialect string, fresh func() string, upTo string) {
	ctx := context.Background()
	oldDSN := fresh()
	applied := applyBefore(t, dialect, oldDSN, upTo)
	fillBefore(t, dialect, oldDSN, applied)
	cfg := engine.Config{Migrations: []engine.Migrations{ledger.Migrations()}}
	cfg.DSN = oldDSN
	old, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open the database made before: %v", err)
	}
	defer old.Close()
	cfg.DSN = fresh()
	made, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer made.Close()
	if got, want := schema(t, old), schema(t, made); got != want {
		t.Errorf("upgraded schema differs from a new database's:\n--- upgraded\n%s\n--- new\n%s", got, want)
	}
	versions, err := old.Migrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	newVersions, _ := made.Migrations(ctx)
	for _, v := range append(applied, newVersions...) {
		if !slices.Contains(versions, v) {
			t.Errorf("version %s is not recorded after the upgrade: %v", v, versions)
		}
	}
	checkRowsKept(t, old, applied)
	if _, err := ledger.New(old, ledger.Config{}); err != nil {
		t.Errorf("the ledger refuses the upgraded database: %v", err)
	}
}

// applyBefore applies before's migrations up to upTo as the store applied
// them then, and returns the versions it applied.
func applyBefore(t *testing.T, dialect, dsn, upTo string) []string {
	db := rawOpen(t, dialect, dsn)
	defer db.Close()
	files, err := filepath.Glob(filepath.Join(before, dialect, "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations in %s (%v)", before, err)
	}
	sort.Strings(files)
	exec(t, db, `CREATE TABLE schema_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`)
	var applied []string
	for _, f := range files {
		version := strings.TrimSuffix(filepath.Base(f), ".sql")
		script, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		exec(t, db, string(script))
		exec(t, db, fmt.Sprintf(`INSERT INTO schema_migrations (version, applied_at) VALUES ('%s', 1)`, version))
		applied = append(applied, version)
		if version == upTo {
			break
		}
	}
	return applied
}

// fillBefore writes a row to the tables the applied versions made: an
// event, its command, a wallet, an entry and a transaction; an entitlement
// and a revocation once 0003_economy made their columns and table.
func fillBefore(t *testing.T, dialect, dsn string, applied []string) {
	db := rawOpen(t, dialect, dsn)
	defer db.Close()
	for _, q := range []string{
		`INSERT INTO inbox (source, key, type, player_id, body, answer_status, received_at) VALUES ('xsolla', 'order_paid:1', 'order_paid', 'p1', 'body', 204, 1)`,
		`INSERT INTO outbox (id, event_id, kind, target, player_id, command, state, next_at, created_at, updated_at)
			SELECT 't1', id, 'fulfill', 'ledger', 'p1', '{}', 'done', 1, 1, 1 FROM inbox`,
		`INSERT INTO ledger_players (player_id, created_at) VALUES ('p1', 1)`,
		`INSERT INTO ledger_wallets (player_id, currency, platform, balance, updated_at) VALUES ('p1', 'GEMS', 'Xsolla', 500, 1)`,
		`INSERT INTO ledger_entries (idempotency_key, player_id, currency, platform, amount, balance_after, reason, transaction_id, created_at)
			VALUES ('t1:GEMS', 'p1', 'GEMS', 'Xsolla', 500, 500, 'fulfill', 't1', 1)`,
		`INSERT INTO ledger_transactions (transaction_id, kind, player_id, result, created_at) VALUES ('t1', 'fulfill', 'p1', '{}', 1)`,
		`INSERT INTO ledger_transactions (transaction_id, kind, player_id, reverses, result, created_at) VALUES ('t1.revoke', 'revoke', 'p1', 't1', '{}', 2)`,
	} {
		exec(t, db, q)
	}
	if slices.Contains(applied, "0003_economy") {
		exec(t, db, `INSERT INTO ledger_entitlements (id, player_id, item, type, sku, platform, use_count, status, transaction_id, granted_at, updated_at, granted_count)
			VALUES ('e1', 'p1', 'sword', 'durable', 'sword', 'Xsolla', 1, 'active', 't1', 1, 1, 1)`)
		exec(t, db, `INSERT INTO ledger_revocations (id, player_id, transaction_id, source, status, record, created_at)
			VALUES ('r1', 'p1', 't1', 'xsolla', 'done', '{}', 2)`)
	}
}

// checkRowsKept reads back what fillBefore wrote, through the upgraded
// store, with the columns later versions added.
func checkRowsKept(t *testing.T, db *store.DB, applied []string) {
	ctx := context.Background()
	var balance, events int
	var kind, reverses string
	if err := db.QueryRow(ctx, `SELECT balance FROM ledger_wallets WHERE player_id = 'p1'`).Scan(&balance); err != nil || balance != 500 {
		t.Errorf("wallet balance = %d (err %v), want 500", balance, err)
	}
	want := "fulfill" // 0003_economy sets the kind of the entries made before it
	if slices.Contains(applied, "0003_economy") {
		want = ""
	}
	if err := db.QueryRow(ctx, `SELECT kind FROM ledger_entries WHERE transaction_id = 't1'`).Scan(&kind); err != nil || kind != want {
		t.Errorf("entry kind = %q (err %v), want %q", kind, err, want)
	}
	if err := db.QueryRow(ctx, `SELECT reverses FROM ledger_transactions WHERE reverses <> ''`).Scan(&reverses); err != nil || reverses != "t1" {
		t.Errorf("revoke reverses %q (err %v), want t1", reverses, err)
	}
	if n, err := db.EventCount(ctx, "xsolla"); err != nil || n != 1 {
		t.Errorf("events = %d (err %v), want 1", n, err)
	}
	c, err := db.Command(ctx, "t1")
	if err != nil || c.State != "done" {
		t.Errorf("command t1 = %+v (err %v), want done", c, err)
	}
	if slices.Contains(applied, "0003_economy") {
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM ledger_entitlements e JOIN ledger_revocations r ON r.transaction_id = e.transaction_id`).Scan(&events); err != nil || events != 1 {
			t.Errorf("entitlement with its revocation: %d rows (err %v), want 1", events, err)
		}
	}
}

// schema describes every table, column and index of db, in a text equal
// for equal schemas.
func schema(t *testing.T, db *store.DB) string {
	if db.Dialect() == engine.SQLite {
		return lines(t, db, `SELECT type || ' ' || name || ': ' || sql FROM sqlite_master
			WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY type, name`)
	}
	columns := lines(t, db, `SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || COALESCE(column_default, '')
		FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`)
	indexes := lines(t, db, `SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname`)
	constraints := lines(t, db, `SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
		WHERE connamespace = current_schema()::regnamespace ORDER BY conname`)
	// Index definitions name the test's private schema.
	indexes = regexp.MustCompile(`storegate_test_\d+\.`).ReplaceAllString(indexes, "")
	return columns + "\n" + indexes + "\n" + constraints
}

func lines(t *testing.T, db *store.DB, query string) string {
	rows, err := db.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join(strings.Fields(s), " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, "\n")
}

// rawOpen opens dsn without the store, as the store's drivers name it.
func rawOpen(t *testing.T, dialect, dsn string) *sql.DB {
	driver, source := "pgx", dsn
	if dialect == "sqlite" {
		driver, source = "sqlite", "file:"+strings.TrimPrefix(dsn, "sqlite:")+"?"+url.Values{"_pragma": {"foreign_keys(1)"}}.Encode()
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func exec(t *testing.T, db *sql.DB, query string) {
	t.Helper()
	if _, err := db.Exec(query); err != nil {
		t.Fatalf("%.60s...: %v", query, err)
	}
}
