package adapters

import (
	"sync"
	"time"
)

// Recent remembers answers for a few seconds: a sender's user check and the
// grant behind it ask a target the same question within moments. Only
// answers that cannot go stale in that time belong here (a player exists);
// a stale "no" could refuse a new player's paid order.
type Recent[V any] struct {
	mu      sync.Mutex
	entries map[string]recentEntry[V]
}

type recentEntry[V any] struct {
	v  V
	at time.Time
}

const (
	recentTTL = 5 * time.Second
	recentMax = 4096
)

// Get returns the answer for key if it was put less than a few seconds ago.
func (r *Recent[V]) Get(key string, now time.Time) (V, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[key]
	if !ok || now.Sub(e.at) > recentTTL || now.Before(e.at) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put remembers an answer. When full, expired answers go first, then all.
func (r *Recent[V]) Put(key string, v V, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries == nil {
		r.entries = map[string]recentEntry[V]{}
	}
	if len(r.entries) >= recentMax {
		for k, e := range r.entries {
			if now.Sub(e.at) > recentTTL {
				delete(r.entries, k)
			}
		}
		if len(r.entries) >= recentMax {
			clear(r.entries)
		}
	}
	r.entries[key] = recentEntry[V]{v, now}
}
