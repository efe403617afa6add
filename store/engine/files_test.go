package engine

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The database, its log and shared-memory files are 0600 and a folder the
// store creates 0700, whatever the umask: stored bodies hold players'
// e-mail addresses. A file made readable by others before is tightened.
func TestOpen_FilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := filepath.Join(t.TempDir(), "data", "nested")
	reopened := filepath.Join(t.TempDir(), "old.db")
	for _, f := range []string{reopened, reopened + "-wal", reopened + "-shm"} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, file := range []string{filepath.Join(dir, "s.db"), reopened} {
		db, err := Open(context.Background(), Config{Migrations: items, DSN: "sqlite:" + file})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Write(context.Background(), func(ctx context.Context, tx *Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO items (id) VALUES ('o')`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{file, file + "-wal", file + "-shm"} {
			if mode := perm(t, f); mode != 0o600 {
				t.Errorf("%s: mode %v, want 0600", filepath.Base(f), mode)
			}
		}
		db.Close()
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if mode := perm(t, d); mode != 0o700 {
			t.Errorf("folder %s: mode %v, want 0700", d, mode)
		}
	}
}

func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// A folder the store cannot create or write to is refused at start, by
// name and with what to do, not with SQLite's "unable to open database file".
func TestOpen_UnwritableFolderIsNamed(t *testing.T) {
	root := t.TempDir()
	notAFolder := filepath.Join(root, "file")
	if err := os.WriteFile(notAFolder, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(root, "read-only")
	if err := os.Mkdir(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, folder, want string
	}{
		{"cannot be created", filepath.Join(notAFolder, "data"), "cannot be found or created"},
		{"read-only", readOnly, "is not writable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "read-only" && os.Geteuid() == 0 {
				t.Skip("root writes to a read-only folder")
			}
			db, err := Open(context.Background(), Config{Migrations: items, DSN: "sqlite:" + filepath.Join(tc.folder, "s.db")})
			if err == nil {
				db.Close()
				t.Fatal("opened")
			}
			msg := err.Error()
			if !strings.Contains(msg, "store folder "+tc.folder+" "+tc.want) || !strings.Contains(msg, "store.dsn") {
				t.Fatalf("error %q, want the folder named, %q, and what to do", msg, tc.want)
			}
		})
	}
}
