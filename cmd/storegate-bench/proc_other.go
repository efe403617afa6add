//go:build !linux

package main

import (
	"syscall"
	"time"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// selfCPU is not measured here: the report leaves the generator's CPU out.
func selfCPU() time.Duration { return 0 }
