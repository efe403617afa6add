package adapters

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"storegate"
)

// Classify is the one place that decides what an HTTP result means for a
// command: done (2xx), retry later (transport errors, timeouts, 408, 425,
// 429, 5xx; with the Retry-After hint when given), or dead letter (any other
// status: the request itself is wrong and repeating it cannot help). It feeds
// the in-call retries, the breaker and the dispatcher alike.
func Classify(resp *http.Response, err error) storegate.Outcome {
	if err != nil {
		code := "TRANSPORT"
		if errors.Is(err, context.DeadlineExceeded) {
			code = "TIMEOUT"
		}
		return storegate.Outcome{Verdict: storegate.VerdictRetry, Code: code, Message: err.Error()}
	}
	out := storegate.Outcome{HTTPStatus: resp.StatusCode}
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		out.Verdict = storegate.VerdictDone
	case s == http.StatusRequestTimeout, s == http.StatusTooEarly, s == http.StatusTooManyRequests, s >= 500:
		out.Verdict = storegate.VerdictRetry
		out.RetryAfter = RetryAfter(resp.Header.Get("Retry-After"), time.Now())
		out.Message = fmt.Sprintf("target answered %d", s)
	default:
		out.Verdict = storegate.VerdictDead
		out.Message = fmt.Sprintf("target answered %d", s)
	}
	return out
}

// RetryAfter parses a Retry-After header: delay-seconds or an HTTP date.
// It returns 0 when absent or unreadable.
func RetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	// A number too large for a Duration (out of int64 range, or overflowing
	// when multiplied) means "much later": never a wrapped-around short wait.
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if secs <= 0 {
			return 0
		}
		if secs > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
