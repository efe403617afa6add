package main

import "syscall"

// sysProcAttr makes the kernel kill a server if the bench dies without
// cleaning up (SIGKILL, panic in a goroutine), so no server outlives a run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
