//go:build !linux

package main

import (
	"os"
	"syscall"
	"time"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// selfCPU is not measured here: the report leaves the generator's CPU out.
func selfCPU() time.Duration { return 0 }

// datasync is fsync where fdatasync is not at hand.
func datasync(f *os.File) error { return f.Sync() }

// settleDisk is a no-op here: the writeback it waits for is Linux's concern.
func settleDisk() {}
