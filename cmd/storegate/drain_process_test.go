package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"storegate/adapters/studio/studiotest"
	"storegate/mapping"
)

// writeStudioConfig is writeConfig with the source's grants going to a
// studio backend at url.
func writeStudioConfig(t *testing.T, dir string, n node, dsn, url string, dispatch bool) string {
	t.Helper()
	return writeConfigTo(t, dir, n, dsn, dispatch, fmt.Sprintf(`studio, kind: http, http: {url: %q, secrets: ["${T_STUDIO}"]}`, url))
}

// A gateway killed with SIGKILL in the middle of draining a backlog to a
// studio backend, some deliveries answered and recorded, some taken effect
// with their answers lost, the rest not sent, delivers every command once
// after a restart: the backend, idempotent by transaction id, sees each
// take effect exactly once.
func TestProcess_SIGKILLMidDrainDeliversEachOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	const orders = 600
	const secret = "whsec_cHJvY2Vzcy1zdHVkaW8tc2VjcmV0LTAxMjM0NQ=="
	backend, err := studiotest.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	if !strings.HasPrefix(backend.URL, "http://127.0.0.1:") {
		t.Fatalf("backend on %s, want 127.0.0.1", backend.URL)
	}
	// Every command takes effect, then its answer is held back a while: the
	// kill lands among deliveries in flight.
	var slow []studiotest.Fault
	for range orders {
		slow = append(slow, studiotest.Fault{Hang: 100 * time.Millisecond})
	}
	backend.Script(slow...)

	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "storegate.db")
	n := freeNode(t)
	env := append(os.Environ(), "T_STUDIO="+secret)
	first := startEnv(t, writeStudioConfig(t, dir, n, dsn, backend.URL, false), n, env)
	sendLoad(t, n.addr, orders)
	first.cmd.Process.Signal(syscall.SIGKILL)
	first.cmd.Wait()
	if s := readState(t, dsn); s.pending != orders {
		t.Fatalf("backlog %d, want %d", s.pending, orders)
	}

	second := startEnv(t, writeStudioConfig(t, dir, n, dsn, backend.URL, true), n, env)
	waitUntil(t, 60*time.Second, "a quarter of the backlog delivered", func() bool { return len(backend.Effects()) >= orders/4 })
	second.cmd.Process.Signal(syscall.SIGKILL)
	second.cmd.Wait()
	mid := readState(t, dsn)
	t.Logf("at SIGKILL: %d taken effect at the backend, %d recorded done, %d pending", len(backend.Effects()), mid.done, mid.pending)
	if mid.pending == 0 {
		t.Fatalf("the drain was over before the kill: nothing to test")
	}

	third := startEnv(t, writeStudioConfig(t, dir, n, dsn, backend.URL, true), n, env)
	waitDrained(t, third)
	stop(t, third)
	if s := readState(t, dsn); s.done != orders {
		t.Errorf("after restart: %d done, want %d", s.done, orders)
	}
	effects := backend.Effects()
	if len(effects) != orders {
		t.Errorf("%d transactions took effect, want %d", len(effects), orders)
	}
	for o := 1; o <= orders; o++ {
		if got := effects[mapping.XsollaFulfillID("xs", mapping.Int(o))]; got != 1 {
			t.Errorf("order %d took effect %d times, want exactly once", o, got)
		}
	}
	if p := backend.Problems(); len(p) > 0 {
		t.Errorf("contract problems: %v", p)
	}
}
