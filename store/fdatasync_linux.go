package store

import (
	"os"
	"syscall"
)

// fdatasync flushes a file's data, and its size when it changed, but not its
// times: the log is rewritten in place once it has grown, so this saves a
// metadata write per flush.
var fdatasync = func(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
