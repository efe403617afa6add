package main

import (
	"os"
	"syscall"
	"time"
)

// sysProcAttr makes the kernel kill a server if the bench dies without
// cleaning up (SIGKILL, panic in a goroutine), so no server outlives a run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// selfCPU is the CPU time this process (the load generator) has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// datasync flushes f's data and the metadata needed to read it back
// (fdatasync), not its timestamps.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// settleDisk writes out what earlier servers left in the page cache, so
// the kernel's writeback of their files does not land in the next one's
// measured time.
func settleDisk() { syscall.Sync() }
