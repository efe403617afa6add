package engine

import (
	"os"
	"syscall"
)

// datasync flushes f's data and what reading it back needs (its size and
// blocks), not its timestamps: fdatasync, as SQLite flushes its own files
// on Linux. fsync also flushes the file's modification time, which can
// take a journal commit of the file system, and makes every flush slower.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
