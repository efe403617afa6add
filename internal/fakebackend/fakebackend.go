// Package fakebackend is what the fake backends (agstest, studiotest)
// share: a queue of scripted faults, each taken by the next request it
// matches, an outage switch, a wait that ends early when the client hangs
// up, and a record of what each transaction received and how many times it
// took effect.
package fakebackend

import (
	"maps"
	"net/http"
	"sync"
	"time"
)

// Queue is a queue of faults of type F and an outage switch. The zero
// value is ready; it is safe for concurrent use.
type Queue[F any] struct {
	mu     sync.Mutex
	faults []F
	down   bool
}

// Script queues faults; each is used by the next request it matches.
func (s *Queue[F]) Script(f ...F) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f...)
}

// SetDown starts or ends an outage: every request answers 503.
func (s *Queue[F]) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Next reports an outage, or takes the first queued fault that match
// accepts (nil if none).
func (s *Queue[F]) Next(match func(F) bool) (down bool, fault *F) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return true, nil
	}
	for i, f := range s.faults {
		if match(f) {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			return false, &f
		}
	}
	return false, nil
}

// Sleep waits d, or until the client hangs up (false). Read the request
// body first, or the server does not notice a client that left.
func Sleep(r *http.Request, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		return false
	}
}

// Record is what a fake saw: every call, and per key (a transaction) the
// requests that reached its logic, the effects they had and the last body.
// The zero value is ready; it is safe for concurrent use.
type Record struct {
	mu       sync.Mutex
	calls    int
	requests map[string]int
	effects  map[string]int
	bodies   map[string][]byte
}

// Call counts one request received.
func (r *Record) Call() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
}

// Request counts a request for key and keeps its body.
func (r *Record) Request(key string, body []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.requests == nil {
		r.requests, r.bodies = map[string]int{}, map[string][]byte{}
	}
	r.requests[key]++
	r.bodies[key] = body
}

// Effect counts key taking effect.
func (r *Record) Effect(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.effects == nil {
		r.effects = map[string]int{}
	}
	r.effects[key]++
}

// Effected says how many times key took effect.
func (r *Record) Effected(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.effects[key]
}

// Calls counts every request received.
func (r *Record) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// Effects returns how many times each key took effect.
func (r *Record) Effects() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.effects)
}

// Requests returns how many requests reached each key's logic.
func (r *Record) Requests() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.requests)
}

// Body returns the last body received for key.
func (r *Record) Body(key string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodies[key]
}
