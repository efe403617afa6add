package adapters_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"storegate"
	"storegate/adapters"
)

// script is a fake target server answering a scripted sequence of statuses
// (then 200 for ever) and counting the calls.
type script struct {
	mu      sync.Mutex
	replies []reply
	calls   int
}

type reply struct {
	status     int
	retryAfter string
	body       string
	hang       time.Duration // sleep before answering
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Reading the body lets the server notice a client that hung up.
	io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.calls++
	rep := reply{status: 200, body: `{"ok":true}`}
	if len(s.replies) > 0 {
		rep, s.replies = s.replies[0], s.replies[1:]
	}
	s.mu.Unlock()
	if rep.hang > 0 {
		select {
		case <-time.After(rep.hang):
		case <-r.Context().Done():
			return
		}
	}
	if rep.retryAfter != "" {
		w.Header().Set("Retry-After", rep.retryAfter)
	}
	w.WriteHeader(rep.status)
	w.Write([]byte(rep.body))
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv.URL
}

var fast = adapters.ClientConfig{Timeout: time.Second, Attempts: 3, RetryWaitMin: 5 * time.Millisecond, RetryWaitMax: 50 * time.Millisecond}

func TestClient_ScriptedReplies(t *testing.T) {
	tests := []struct {
		name        string
		cfg         adapters.ClientConfig
		replies     []reply
		wantVerdict storegate.Verdict
		wantStatus  int
		wantCalls   int
		wantRA      time.Duration
		wantCode    string
	}{
		{"success at once", fast, nil, storegate.VerdictDone, 200, 1, 0, ""},
		{"500s then success, inside one call", fast, []reply{{status: 500}, {status: 502}}, storegate.VerdictDone, 200, 3, 0, ""},
		{"500s past the attempts go back to the dispatcher", fast, []reply{{status: 500}, {status: 500}, {status: 503}}, storegate.VerdictRetry, 503, 3, 0, ""},
		{"a permanent 400 is not retried", fast, []reply{{status: 400}}, storegate.VerdictDead, 400, 1, 0, ""},
		{"a 404 is not retried", fast, []reply{{status: 404}}, storegate.VerdictDead, 404, 1, 0, ""},
		{"429 with a short Retry-After is waited for in the call", withWaitMax(fast, 2*time.Second), []reply{{status: 429, retryAfter: "1"}}, storegate.VerdictDone, 200, 2, 0, ""},
		{"429 with a long Retry-After goes back with the hint", fast, []reply{{status: 429, retryAfter: "120"}}, storegate.VerdictRetry, 429, 1, 120 * time.Second, ""},
		{"a timeout is retried in the call", withTimeout(fast, 100*time.Millisecond), []reply{{status: 200, hang: time.Second}}, storegate.VerdictDone, 200, 2, 0, ""},
		{"timeouts past the attempts go back", withTimeout(fast, 100*time.Millisecond),
			[]reply{{hang: time.Second}, {hang: time.Second}, {hang: time.Second}}, storegate.VerdictRetry, 0, 3, 0, "TIMEOUT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &script{replies: tc.replies}
			url := serve(t, fake)
			c := adapters.NewClient(tc.cfg, nil)
			started := time.Now()
			resp, out := c.Do(context.Background(), http.MethodPost, url, []byte(`{"a":1}`), nil)
			if got, want := out.Verdict, tc.wantVerdict; got != want {
				t.Errorf("verdict = %q, want %q (%+v)", got, want, out)
			}
			if got, want := out.HTTPStatus, tc.wantStatus; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if got, want := fake.count(), tc.wantCalls; got != want {
				t.Errorf("calls = %d, want %d", got, want)
			}
			if got, want := out.RetryAfter, tc.wantRA; got != want {
				t.Errorf("RetryAfter = %v, want %v", got, want)
			}
			if tc.wantCode != "" && out.Code != tc.wantCode {
				t.Errorf("code = %q, want %q", out.Code, tc.wantCode)
			}
			if tc.wantStatus != 0 && resp == nil {
				t.Fatal("no response returned with the outcome")
			}
			if tc.name == "429 with a short Retry-After is waited for in the call" && time.Since(started) < 900*time.Millisecond {
				t.Errorf("answered after %v: the one-second Retry-After was not honoured", time.Since(started))
			}
			if out.Verdict == storegate.VerdictDone {
				// The body stays readable after the classifier read it.
				if got, want := string(adapters.Body(resp)), `{"ok":true}`; got != want {
					t.Errorf("body = %q, want %q", got, want)
				}
			}
		})
	}
}

func withTimeout(c adapters.ClientConfig, d time.Duration) adapters.ClientConfig {
	c.Timeout = d
	return c
}

func withWaitMax(c adapters.ClientConfig, d time.Duration) adapters.ClientConfig {
	c.RetryWaitMax = d
	return c
}

// The target's classifier, not the generic one, decides the retries: a
// deferred retry (the command cannot take effect yet) is not repeated in
// the call, and the classifier sees the body.
func TestClient_UsesTheTargetsClassifier(t *testing.T) {
	fake := &script{replies: []reply{{status: 404, body: `{"errorCode":38145}`}}}
	url := serve(t, fake)
	var seen []string
	classify := func(resp *http.Response, err error) storegate.Outcome {
		out := adapters.Classify(resp, err)
		if resp != nil {
			body := string(adapters.Body(resp))
			seen = append(seen, body)
			if body == `{"errorCode":38145}` {
				out.Verdict, out.Deferred = storegate.VerdictRetry, true
			}
		}
		return out
	}
	c := adapters.NewClient(fast, classify)
	_, out := c.Do(context.Background(), http.MethodPut, url, nil, nil)
	if out.Verdict != storegate.VerdictRetry || !out.Deferred {
		t.Errorf("outcome = %+v, want a deferred retry", out)
	}
	if got, want := fake.count(), 1; got != want {
		t.Errorf("calls = %d, want %d: a deferred retry is not repeated in the call", got, want)
	}
	if len(seen) == 0 || seen[0] != `{"errorCode":38145}` {
		t.Errorf("classifier saw bodies %q, want the answer's", seen)
	}
}

// At most MaxInFlight calls reach the target at once; the others wait.
func TestClient_MaxInFlight(t *testing.T) {
	var now, peak atomic.Int32
	release := make(chan struct{})
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		now.Add(-1)
	}))
	cfg := fast
	cfg.MaxInFlight = 2
	c := adapters.NewClient(cfg, nil)
	var wg sync.WaitGroup
	outs := make([]storegate.Outcome, 6)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, outs[i] = c.Do(context.Background(), http.MethodGet, url+"/"+strconv.Itoa(i), nil, nil)
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for now.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	if got, want := peak.Load(), int32(2); got != want {
		t.Errorf("peak calls in flight = %d, want %d", got, want)
	}
	for i, out := range outs {
		if out.Verdict != storegate.VerdictDone {
			t.Errorf("call %d: %+v, want done", i, out)
		}
	}
}

// A call that cannot get a slot before its deadline is a retry, and never
// reaches the target.
func TestClient_BusyGivesUpWithTheContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	fake := &script{}
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fake.ServeHTTP(w, r)
		<-release
	}))
	cfg := fast
	cfg.MaxInFlight = 1
	cfg.Timeout = 10 * time.Second
	c := adapters.NewClient(cfg, nil)
	go c.Do(context.Background(), http.MethodGet, url, nil, nil)
	deadline := time.Now().Add(5 * time.Second)
	for fake.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, out := c.Do(ctx, http.MethodGet, url, nil, nil)
	if out.Verdict != storegate.VerdictRetry || out.Code != "BUSY" {
		t.Errorf("outcome = %+v, want a BUSY retry", out)
	}
	if got, want := fake.count(), 1; got != want {
		t.Errorf("target calls = %d, want %d", got, want)
	}
}
