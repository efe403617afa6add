package main

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"storegate/adapters/ags/agstest"
	"storegate/adapters/studio/studiotest"
	"storegate/mapping"
)

// A 10-second outage of both backends under steady load, in real time: the
// gateway keeps answering 204 (every order is committed), the breakers open
// and commands wait without spending attempts, and when the backends come
// back the backlog drains with every grant applied exactly once, including
// those whose answers were lost before the outage.
func TestGateway_OutageUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an 11-second outage in real time; skipped with -short")
	}
	const (
		rate    = 25 // orders per second per source
		before  = time.Second
		outage  = 10 * time.Second
		players = 50
	)
	agsFake, studio := fakes(t)
	l := startLive(t, agsFake.URL, studio.URL,
		"max_attempts: 30, backoff_base: 100ms, backoff_max: 1s",
		"timeout: 300ms\n    retry: {attempts: 2, wait_min: 20ms, wait_max: 100ms}\n    breaker: {failures: 5, open_for: 1s}")
	// Before the outage some answers are lost after the effect (a 502, a
	// hang past the timeout): those commands are retried and must not take
	// effect twice.
	for range 5 {
		agsFake.Script(agstest.Fault{Kind: "fulfill", Status: 502, AfterEffect: true}, agstest.Fault{Kind: "fulfill", Hang: time.Second})
		studio.Script(studiotest.Fault{Kind: "fulfill", Status: 502, AfterEffect: true}, studiotest.Fault{Kind: "fulfill", Hang: time.Second})
	}

	type load struct {
		source string
		posted int
		failed []string
	}
	loads := []*load{{source: "xs-ags"}, {source: "xs-studio"}}
	begin := time.Now()
	stop := begin.Add(before + outage)
	var wg sync.WaitGroup
	for _, ld := range loads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second / rate)
			defer tick.Stop()
			for order := 1; time.Now().Before(stop); order++ {
				status, err := l.post(ld.source, order, "player-"+strconv.Itoa(order%players), "crystals_100", "starter_sword")
				ld.posted++
				if err != nil || status != 204 {
					ld.failed = append(ld.failed, strconv.Itoa(order)+": "+strconv.Itoa(status)+" "+errString(err))
				}
				<-tick.C
			}
		}()
	}
	time.Sleep(before)
	callsBefore := map[string]int{"ags": agsFake.Calls(), "studio": studio.Calls()}
	agsFake.SetDown(true)
	studio.SetDown(true)
	down := time.Now()
	time.Sleep(outage)
	agsFake.SetDown(false)
	studio.SetDown(false)
	recovered := time.Now()
	callsDuring := map[string]int{"ags": agsFake.Calls() - callsBefore["ags"], "studio": studio.Calls() - callsBefore["studio"]}
	wg.Wait()

	backlog := map[string]int{}
	for _, target := range []string{"ags", "studio"} {
		backlog[target] = l.count(t, `SELECT COUNT(*) FROM outbox WHERE target = ? AND state = 'pending'`, target)
	}
	drained := map[string]time.Duration{}
	waitUntil(t, 20*time.Second, "the backlog drains", func() bool {
		for _, target := range []string{"ags", "studio"} {
			if _, ok := drained[target]; !ok && l.count(t, `SELECT COUNT(*) FROM outbox WHERE target = ? AND state != 'done'`, target) == 0 {
				drained[target] = time.Since(recovered)
			}
		}
		return len(drained) == 2
	})

	for _, ld := range loads {
		if len(ld.failed) > 0 {
			t.Errorf("%s: %d of %d orders were not answered 204: %v", ld.source, len(ld.failed), ld.posted, ld.failed[:min(5, len(ld.failed))])
		}
	}
	// Exactly once: every order's grant took effect once in its backend,
	// and nothing else did.
	agsEffects, studioEffects := agsFake.Effects(), studio.Effects()
	for _, c := range []struct {
		target  string
		ld      *load
		effects map[string]int
		key     func(int) string
	}{
		{"ags", loads[0], agsEffects, func(o int) string { return "fulfill:" + mapping.XsollaFulfillID("xs-ags", mapping.Int(o)) }},
		{"studio", loads[1], studioEffects, func(o int) string { return mapping.XsollaFulfillID("xs-studio", mapping.Int(o)) }},
	} {
		if len(c.effects) != c.ld.posted {
			t.Errorf("%s: %d transactions took effect, want %d (one per order)", c.target, len(c.effects), c.ld.posted)
		}
		for o := 1; o <= c.ld.posted; o++ {
			if n := c.effects[c.key(o)]; n != 1 {
				t.Errorf("%s: order %d took effect %d times, want exactly once", c.target, o, n)
			}
		}
	}

	// The figures, per target.
	for _, target := range []string{"ags", "studio"} {
		commands := l.count(t, `SELECT COUNT(*) FROM outbox WHERE target = ?`, target)
		during := l.count(t, `SELECT COUNT(*) FROM outbox WHERE target = ? AND created_at >= ? AND created_at < ?`,
			target, down.UnixMicro(), recovered.UnixMicro())
		spent := l.count(t, `SELECT COALESCE(SUM(attempts), 0) FROM outbox WHERE target = ?`, target)
		failed := l.count(t, `SELECT COUNT(*) FROM attempts a JOIN outbox o ON o.id = a.command_id WHERE o.target = ? AND a.verdict = 'retry'`, target)
		retried := l.count(t, `SELECT COUNT(*) FROM outbox WHERE target = ? AND attempts > 1`, target)
		dead := l.count(t, `SELECT COUNT(*) FROM outbox WHERE target = ? AND state = 'dead'`, target)
		opened := breakerOpens(t, l, target)
		t.Logf("%s: %d commands (%d during the %v outage); backlog at recovery %d; breaker opened %d times; "+
			"attempts spent %d (%d failed, %d commands retried); calls that reached the backend during the outage %d; "+
			"backlog drained %v after recovery; dead letters %d",
			target, commands, during, outage, backlog[target], opened,
			spent, failed, retried, callsDuring[target], drained[target].Round(10*time.Millisecond), dead)
		if opened == 0 {
			t.Errorf("%s: the breaker never opened during a 10 s outage", target)
		}
		if dead != 0 {
			t.Errorf("%s: %d dead letters; an outage must not kill commands", target, dead)
		}
		// While the breaker is open, commands wait without attempts: far
		// fewer attempts failed than commands waited through the outage.
		if failed >= backlog[target] {
			t.Errorf("%s: %d failed attempts for a backlog of %d: the breaker did not spare attempts", target, failed, backlog[target])
		}
		if callsDuring[target] >= backlog[target] {
			t.Errorf("%s: %d calls reached the backend during the outage for a backlog of %d", target, callsDuring[target], backlog[target])
		}
	}
	if logs := l.log(); !strings.Contains(logs, `"msg":"breaker state changed"`) || !strings.Contains(logs, `"to":"open"`) {
		t.Errorf("the breaker's transitions are not in the logs")
	}
}

// breakerOpens sums storegate_breaker_transitions_total{to="open"} over
// the target's dependencies (an AGS target has two: target.platform and
// target.iam).
func breakerOpens(t *testing.T, l *live, target string) int {
	t.Helper()
	families, err := l.gw.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		if f.GetName() != "storegate_breaker_transitions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if dep := label(m, "target"); (dep == target || strings.HasPrefix(dep, target+".")) && label(m, "to") == "open" {
				n += int(m.GetCounter().GetValue())
			}
		}
	}
	return n
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
