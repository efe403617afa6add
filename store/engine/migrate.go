package engine

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// Migrations is one owner's part of the schema: a folder per dialect
// ("sqlite", "postgres") of SQL files, each applied once, in name order, in
// its own transaction. A file's name without ".sql" is its version, recorded
// in schema_migrations, so versions are unique across every set and a
// recorded version never changes meaning.
type Migrations struct {
	// Owner names the set in errors ("store", "ledger").
	Owner string
	// Files holds the folders "sqlite" and "postgres".
	Files fs.FS
}

// migrationLock is the PostgreSQL advisory lock key that serialises
// migrations across replicas starting at once.
const migrationLock = 0x5107e9a7e

// migration is one file of a set.
type migration struct {
	version string
	files   fs.FS
	path    string
}

// migrate applies every migration of sets not yet recorded in
// schema_migrations: set by set in order, each set in name order.
func (db *DB) migrate(ctx context.Context, sets []Migrations) error {
	todo, err := db.migrations(sets)
	if err != nil {
		return err
	}
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if db.dialect == Postgres {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
			return fmt.Errorf("advisory lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	for _, m := range todo {
		if err := db.apply(ctx, conn, m); err != nil {
			return fmt.Errorf("%s: %w", m.version, err)
		}
	}
	return nil
}

// migrations lists the files of sets for this dialect, in the order they
// apply, refusing a version that two files share: the second would be taken
// for applied.
func (db *DB) migrations(sets []Migrations) ([]migration, error) {
	var out []migration
	owner := map[string]string{}
	for _, set := range sets {
		names, err := fs.Glob(set.Files, string(db.dialect)+"/*.sql")
		if err != nil {
			return nil, err
		}
		sort.Strings(names)
		for _, name := range names {
			version := strings.TrimSuffix(name[strings.LastIndex(name, "/")+1:], ".sql")
			if o, ok := owner[version]; ok {
				return nil, fmt.Errorf("version %s is both %s's and %s's", version, o, set.Owner)
			}
			owner[version] = set.Owner
			out = append(out, migration{version: version, files: set.Files, path: name})
		}
	}
	return out, nil
}

func (db *DB) apply(ctx context.Context, conn *sql.Conn, m migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, db.rebind("SELECT COUNT(*) FROM schema_migrations WHERE version = ?"), m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	script, err := fs.ReadFile(m.files, m.path)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(script)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, db.rebind("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"),
		m.version, db.now().UnixMicro()); err != nil {
		return err
	}
	return tx.Commit()
}

// Migrations lists the applied migration versions, oldest first.
func (db *DB) Migrations(ctx context.Context) ([]string, error) {
	rows, err := db.Query(ctx, "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
