package engine

import (
	"context"
	"testing/fstest"
)

// items is the table the engine's tests write: the engine keeps none of
// its own, and its tests must not lean on the store's.
var items = []Migrations{{Owner: "test", Files: fstest.MapFS{
	"sqlite/0001_items.sql": {Data: []byte(`CREATE TABLE items (id TEXT PRIMARY KEY,
		tag TEXT NOT NULL DEFAULT '', body BLOB NOT NULL DEFAULT x'')`)},
	"postgres/0001_items.sql": {Data: []byte(`CREATE TABLE items (id TEXT PRIMARY KEY,
		tag TEXT NOT NULL DEFAULT '', body BYTEA NOT NULL DEFAULT '')`)},
}}}

// insertItem writes the item id.
func insertItem(ctx context.Context, tx *Tx, id string) error {
	_, err := tx.Exec(ctx, `INSERT INTO items (id) VALUES (?)`, id)
	return err
}
