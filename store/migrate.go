package store

import (
	"embed"
	"io/fs"

	"storegate/store/engine"
)

//go:embed migrations
var embedded embed.FS

// own is the store's set: the inbox, the outbox, dead letters and orders.
func own() engine.Migrations {
	files, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic(err) // the folder is embedded above
	}
	return engine.Migrations{Owner: "store", Files: files}
}
