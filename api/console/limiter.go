package console

import (
	"sync"
	"time"
)

// limiter counts failed sign-ins per client address over a window: past
// the limit, that address's attempts are refused, right token or not,
// until the window that counted them ends. A guesser gets a handful of
// tries per window; an operator who mistyped waits at most one window.
type limiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	now    func() time.Time
	fails  map[string]*failures
}

type failures struct {
	n     int
	since time.Time
}

// maxAddresses bounds the addresses remembered; beyond it the ones whose
// window ended are forgotten first.
const maxAddresses = 100000

func newLimiter(limit int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{limit: limit, window: window, now: now, fails: map[string]*failures{}}
}

// blocked says whether addr may not try now, and until when.
func (l *limiter) blocked(addr string) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.current(addr)
	if f == nil || f.n < l.limit {
		return false, time.Time{}
	}
	return true, f.since.Add(l.window)
}

// fail counts one failed sign-in from addr.
func (l *limiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.current(addr)
	if f == nil {
		if len(l.fails) >= maxAddresses {
			l.forget()
		}
		f = &failures{since: l.now()}
		l.fails[addr] = f
	}
	f.n++
}

// current is addr's count in the running window, or nil.
func (l *limiter) current(addr string) *failures {
	f := l.fails[addr]
	if f != nil && !l.now().Before(f.since.Add(l.window)) {
		delete(l.fails, addr)
		return nil
	}
	return f
}

func (l *limiter) forget() {
	now := l.now()
	for addr, f := range l.fails {
		if !now.Before(f.since.Add(l.window)) {
			delete(l.fails, addr)
		}
	}
	if len(l.fails) >= maxAddresses {
		clear(l.fails) // a flood of addresses: start over rather than grow
	}
}
