package metrics

import (
	"reflect"
	"testing"
	"time"

	"storegate"
)

func TestSnapshot(t *testing.T) {
	m := New(nil)
	m.Request("xs", "order_paid", 204)
	m.Request("xs", "order_paid", 204)
	m.Request("xs", "payment", 401)
	m.Request("", "", 400)
	m.Delivered("ledger", storegate.VerdictDone, time.Millisecond)
	m.Delivered("ags", storegate.VerdictRetry, time.Millisecond)
	m.BreakerChanged("studio", "", "closed")
	m.BreakerChanged("ags", "closed", "open")
	got := m.Snapshot()
	want := Snapshot{
		Requests:   map[string]map[int]float64{"xs": {204: 2, 401: 1}},
		Deliveries: map[string]map[string]float64{"ledger": {"done": 1}, "ags": {"retry": 1}},
		Breakers:   map[string]string{"studio": "closed", "ags": "open"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Snapshot = %+v, want %+v", got, want)
	}
}
