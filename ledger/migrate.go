package ledger

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"

	"storegate/store"
	"storegate/store/engine"
)

//go:embed migrations
var embedded embed.FS

// Migrations is the ledger's schema, for engine.Config.Migrations: the store
// applies it when it opens, under the lock and in the transactions that
// serve its own.
func Migrations() engine.Migrations {
	files, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic(err) // the folder is embedded above
	}
	return engine.Migrations{Owner: "ledger", Files: files}
}

// checkMigrated refuses a store opened without the ledger's migrations:
// every write would fail later, on a missing table, far from the cause.
func checkMigrated(ctx context.Context, db *store.DB) error {
	applied, err := db.Migrations(ctx)
	if err != nil {
		return fmt.Errorf("ledger: read the applied migrations: %w", err)
	}
	names, err := fs.Glob(Migrations().Files, string(db.Dialect())+"/*.sql")
	if err != nil {
		return err
	}
	for _, name := range names {
		version := name[len(db.Dialect())+1 : len(name)-len(".sql")]
		if !slices.Contains(applied, version) {
			return fmt.Errorf("ledger: migration %s is not applied: open the store with ledger.Migrations() in engine.Config.Migrations", version)
		}
	}
	return nil
}
