package adapters_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"storegate"
	"storegate/adapters"
)

func response(status int, retryAfter string) *http.Response {
	h := http.Header{}
	if retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	return &http.Response{StatusCode: status, Header: h}
}

func TestClassify_Statuses(t *testing.T) {
	tests := []struct {
		name           string
		status         int
		retryAfter     string
		wantVerdict    storegate.Verdict
		wantRetryAfter time.Duration
	}{
		{"200 ok", 200, "", storegate.VerdictDone, 0},
		{"201 created", 201, "", storegate.VerdictDone, 0},
		{"204 no content", 204, "", storegate.VerdictDone, 0},
		{"304 not modified is not a success", 304, "", storegate.VerdictDead, 0},
		{"400 bad request", 400, "", storegate.VerdictDead, 0},
		{"401 unauthorized", 401, "", storegate.VerdictDead, 0},
		{"404 not found", 404, "", storegate.VerdictDead, 0},
		{"408 request timeout", 408, "", storegate.VerdictRetry, 0},
		{"409 conflict", 409, "", storegate.VerdictDead, 0},
		{"422 unprocessable", 422, "", storegate.VerdictDead, 0},
		{"425 too early", 425, "", storegate.VerdictRetry, 0},
		{"429 without Retry-After", 429, "", storegate.VerdictRetry, 0},
		{"429 with Retry-After seconds", 429, "120", storegate.VerdictRetry, 120 * time.Second},
		{"429 with unreadable Retry-After", 429, "soon", storegate.VerdictRetry, 0},
		{"500 internal error", 500, "", storegate.VerdictRetry, 0},
		{"502 bad gateway", 502, "", storegate.VerdictRetry, 0},
		{"503 with Retry-After", 503, "30", storegate.VerdictRetry, 30 * time.Second},
		{"503 without Retry-After", 503, "", storegate.VerdictRetry, 0},
		{"400 ignores Retry-After", 400, "30", storegate.VerdictDead, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := adapters.Classify(response(tc.status, tc.retryAfter), nil)
			if got, want := out.Verdict, tc.wantVerdict; got != want {
				t.Errorf("verdict = %q, want %q", got, want)
			}
			if got, want := out.HTTPStatus, tc.status; got != want {
				t.Errorf("HTTPStatus = %d, want %d", got, want)
			}
			if got, want := out.RetryAfter, tc.wantRetryAfter; got != want {
				t.Errorf("RetryAfter = %v, want %v", got, want)
			}
			if tc.wantVerdict != storegate.VerdictDone {
				if got, want := out.Message, fmt.Sprint(tc.status); !strings.Contains(got, want) {
					t.Errorf("message = %q, want it to name the status %s for dead-letter inspection", got, want)
				}
			}
		})
	}
}

func TestClassify_RetryAfterHTTPDate(t *testing.T) {
	// The classifier reads the wall clock; an HTTP date has one-second
	// precision, so allow for the truncation and for the time the test takes.
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	out := adapters.Classify(response(429, date), nil)
	if got, want := out.Verdict, storegate.VerdictRetry; got != want {
		t.Fatalf("verdict = %q, want %q", got, want)
	}
	if got := out.RetryAfter; got < 80*time.Second || got > 90*time.Second {
		t.Errorf("RetryAfter for %q = %v, want about 90s", date, got)
	}
}

func TestClassify_TransportErrors(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode string
	}{
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, "TRANSPORT"},
		{"url error", &url.Error{Op: "Post", URL: "https://target.example/grant", Err: errors.New("EOF")}, "TRANSPORT"},
		{"deadline exceeded", context.DeadlineExceeded, "TIMEOUT"},
		{"wrapped deadline", fmt.Errorf("deliver: %w", context.DeadlineExceeded), "TIMEOUT"},
		{"url error wrapping deadline", &url.Error{Op: "Post", URL: "https://target.example/grant", Err: context.DeadlineExceeded}, "TIMEOUT"},
		{"cancelled", context.Canceled, "TRANSPORT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A response alongside an error is ignored: the error decides.
			out := adapters.Classify(response(200, ""), tc.err)
			if got, want := out.Verdict, storegate.VerdictRetry; got != want {
				t.Errorf("verdict = %q, want %q", got, want)
			}
			if got, want := out.Code, tc.wantCode; got != want {
				t.Errorf("code = %q, want %q", got, want)
			}
			if got, want := out.Message, tc.err.Error(); got != want {
				t.Errorf("message = %q, want %q", got, want)
			}
		})
	}
}

// A real http.Client timing out against a slow server is a retry with code
// TIMEOUT, the way an adapter sees it.
func TestClassify_ClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("the slow server answered before the deadline")
	}
	out := adapters.Classify(resp, err)
	if got, want := out.Verdict, storegate.VerdictRetry; got != want {
		t.Errorf("verdict = %q, want %q", got, want)
	}
	if got, want := out.Code, "TIMEOUT"; got != want {
		t.Errorf("code = %q, want %q (err %v)", got, want, err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		value string
		want  time.Duration
	}{
		{"absent", "", 0},
		{"zero seconds", "0", 0},
		{"seconds", "120", 120 * time.Second},
		{"negative seconds", "-5", 0},
		{"fraction is not valid", "1.5", 0},
		{"garbage", "later", 0},
		{"IMF-fixdate ahead", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"RFC 850 date ahead", now.Add(time.Hour).Format(time.RFC850), time.Hour},
		{"ANSI C date ahead", now.Add(2 * time.Minute).Format(time.ANSIC), 2 * time.Minute},
		{"date in the past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"date now", now.Format(http.TimeFormat), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := adapters.RetryAfter(tc.value, now), tc.want; got != want {
				t.Errorf("RetryAfter(%q) = %v, want %v", tc.value, got, want)
			}
		})
	}
}

// A Retry-After too large for a time.Duration means "much later", never a
// wrapped-around small or negative wait that would retry at once.
func TestRetryAfter_HugeSecondsDoNotWrap(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for _, v := range []string{"9999999999", "18446744073", "18446744074", "99999999999999999999"} {
		if got := adapters.RetryAfter(v, now); got < 24*time.Hour {
			t.Errorf("RetryAfter(%q) = %v, want a very long wait", v, got)
		}
	}
}
