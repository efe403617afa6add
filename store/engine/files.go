package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// prepareFiles readies a SQLite database file before SQLite opens it. The
// folder is created if missing, private (0700); the file is created or
// tightened to 0600 with its log and shared-memory files, whatever the
// umask: stored bodies hold players' e-mail addresses. SQLite gives the
// files it creates beside the database the database file's mode. A folder
// or file storegate cannot write is refused here, by name, with what to do:
// SQLite itself would only say "unable to open database file (14)".
func prepareFiles(file string) error {
	dir := filepath.Dir(file)
	if _, err := os.Stat(dir); err != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("store folder %s cannot be found or created (%v): create it, writable by the user storegate runs as, or point store.dsn elsewhere", dir, cause(err))
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("store folder %s: %w", dir, err)
		}
	}
	// SQLite creates the log and shared-memory files in the folder.
	probe, err := os.CreateTemp(dir, ".storegate-write-test-*")
	if err != nil {
		return fmt.Errorf("store folder %s is not writable (%v): make it writable by the user storegate runs as, or point store.dsn at a folder that is", dir, cause(err))
	}
	probe.Close()
	os.Remove(probe.Name())

	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store file %s cannot be opened for writing (%v): make it writable by the user storegate runs as", file, cause(err))
	}
	f.Close()
	for _, name := range []string{file, file + "-wal", file + "-shm"} {
		if err := os.Chmod(name, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store file %s cannot be made private (%v): it must belong to the user storegate runs as", name, cause(err))
		}
	}
	return nil
}

// cause is an operating system error without the path it repeats.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
