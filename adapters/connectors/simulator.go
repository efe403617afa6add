package connectors

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"storegate/mapping"
)

// Simulator is an in-memory platform: tests put orders in it and change
// their state, and it answers like a connector, returning each order that
// changed at or after since.
type Simulator struct {
	mu     sync.Mutex
	now    func() time.Time
	orders []simOrder
	calls  int
	// Err, when set, is returned by Orders (a platform outage).
	Err error
}

type simOrder struct {
	key     string
	event   mapping.StoreEvent
	updated time.Time
}

// NewSimulator returns an empty simulator; now stamps each change.
func NewSimulator(now func() time.Time) *Simulator {
	if now == nil {
		now = time.Now
	}
	return &Simulator{now: now}
}

// Put adds an order, or replaces the order with the same platform and
// identity (a purchase becoming a chargeback), stamped with the clock's now.
func (s *Simulator) Put(ev mapping.StoreEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _ := json.Marshal(ev.Order)
	key := ev.Platform + string(id)
	for i := range s.orders {
		if s.orders[i].key == key {
			s.orders[i].event, s.orders[i].updated = ev, s.now()
			return
		}
	}
	s.orders = append(s.orders, simOrder{key: key, event: ev, updated: s.now()})
}

// Calls counts the Orders calls so far.
func (s *Simulator) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Orders returns the player's orders on platform changed at or after since.
func (s *Simulator) Orders(_ context.Context, playerID, platform string, since time.Time) ([]json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.Err != nil {
		return nil, s.Err
	}
	out := []json.RawMessage{}
	for _, o := range s.orders {
		if o.event.PlayerID != playerID || o.event.Platform != platform || o.updated.Before(since) {
			continue
		}
		raw, err := json.Marshal(o.event)
		if err != nil {
			return nil, err
		}
		out = append(out, raw)
	}
	return out, nil
}
