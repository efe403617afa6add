package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"storegate/internal/pgtest"
)

// Three gateway processes share one PostgreSQL database behind a naive load
// balancer (the test itself): orders are spread across them, copies of one
// order hit different replicas at the same instant, and one replica is killed
// with SIGKILL in the middle of the load. Every order must be granted exactly
// once, and nothing answered 204 may be lost.
func TestReplicas_PostgresExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three gateway processes; skipped with -short")
	}
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	var replicas []*proc
	for range 3 {
		n := freeNode(t)
		replicas = append(replicas, start(t, writeConfig(t, dir, n, dsn, true), n))
	}
	var alive [3]atomic.Bool
	for i := range alive {
		alive[i].Store(true)
	}

	// post sends one order to replica i, and, like a load balancer, to the
	// next live replica if i does not answer.
	post := func(first int, order int) error {
		for k := range 3 {
			i := (first + k) % 3
			if !alive[i].Load() {
				continue
			}
			status, err := postOrder(replicas[i].addr, order, "p"+strconv.Itoa(order%25))
			if err != nil {
				continue // connection refused or reset: try another replica
			}
			if status != 204 {
				return fmt.Errorf("order %d via replica %d: status %d", order, i, status)
			}
			return nil
		}
		return fmt.Errorf("order %d: no replica answered", order)
	}

	const orders = 600
	const duplicated = 60 // orders also sent to every replica at once
	var wg sync.WaitGroup
	errs := make(chan error, orders*4)
	sem := make(chan struct{}, 24)
	var sent atomic.Int64
	for order := 1; order <= orders; order++ {
		copies := []int{rand.IntN(3)}
		if order <= duplicated {
			copies = []int{0, 1, 2}
		}
		for _, r := range copies {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := post(r, order); err != nil {
					errs <- err
				}
			}()
		}
		if sent.Add(1) == orders/3 {
			// Kill replica 1 while requests are in flight on it.
			alive[1].Store(false)
			replicas[1].cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	replicas[1].cmd.Wait()

	waitDrained(t, replicas[0])
	dups := duplicatesCaught(t, replicas[0]) + duplicatesCaught(t, replicas[2])
	stop(t, replicas[0])
	stop(t, replicas[2])

	s := readState(t, dsn)
	t.Logf("%d orders (%d sent to all 3 replicas at once), replica 1 killed after %d: %d events, %d grants, %d done, %d duplicates answered by the survivors",
		orders, duplicated, orders/3, s.events, s.grants, s.done, dups)
	if s.events != orders || s.grants != orders || s.done != orders || s.pending != 0 || s.balance != orders*100 {
		t.Fatalf("events %d, grants %d, done %d, pending %d, balance %d; want %d, %d, %d, 0, %d",
			s.events, s.grants, s.done, s.pending, s.balance, orders, orders, orders, orders*100)
	}
	if dups == 0 {
		t.Fatal("no duplicate was answered from the store: the duplicates did not reach the survivors")
	}
}

func duplicatesCaught(t *testing.T, p *proc) int {
	t.Helper()
	total := 0
	for _, line := range metricLines(t, p) {
		if strings.HasPrefix(line, "storegate_duplicates_total{") {
			_, v, _ := strings.Cut(line, "} ")
			n, _ := strconv.ParseFloat(v, 64)
			total += int(n)
		}
	}
	return total
}
