package adapters

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"

	"storegate"
)

// Classifier decides what one HTTP result means for a command. Classify is
// the generic one; a target refines it (AGS reads its errorCode) and hands
// the refinement to its Client, so one function decides the in-call retries,
// the breaker's count and the dispatcher's verdict alike. A classifier may
// read the response body with Body.
type Classifier func(resp *http.Response, err error) storegate.Outcome

// ClientConfig tunes one target's HTTP client. Zero fields take the defaults.
type ClientConfig struct {
	// Timeout bounds one HTTP exchange (connect, send, read the answer).
	// Default 5s.
	Timeout time.Duration
	// MaxInFlight caps the calls to the dependency at once; more wait their
	// turn. The dispatcher delivers to a target this many commands at once.
	// Default 64.
	MaxInFlight int
	// Attempts is how many times one call is tried before the failure goes
	// back to the dispatcher, which retries later with its own backoff.
	// Keep it small: the outbox owns durable retries. Default 3.
	Attempts int
	// RetryWaitMin and RetryWaitMax bound the wait between in-call tries
	// (exponential, with jitter). RetryWaitMax is also the longest
	// Retry-After honoured inside a call: a longer hint ends the call and the
	// dispatcher schedules the next attempt after it. Defaults 100ms and 1s.
	RetryWaitMin time.Duration
	RetryWaitMax time.Duration
	// Breaker guards the dependency: while it is open, calls fail at once
	// with a wait. Several clients of one dependency share it. Default none.
	Breaker *Breaker
}

// WithDefaults returns c with each zero field set to its default: the one
// place the defaults are written, read by NewClient and by whoever shows or
// checks them (the YAML config).
func (c ClientConfig) WithDefaults() ClientConfig {
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 64
	}
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	if c.RetryWaitMin <= 0 {
		c.RetryWaitMin = 100 * time.Millisecond
	}
	if c.RetryWaitMax <= 0 {
		c.RetryWaitMax = time.Second
	}
	if c.RetryWaitMax < c.RetryWaitMin {
		c.RetryWaitMax = c.RetryWaitMin
	}
	return c
}

// Client is the one resilient HTTP client every HTTP target uses: a bounded
// number of calls in flight, a timeout per exchange, and a few quick retries
// of transient failures (go-retryablehttp) decided by the target's
// classifier.
type Client struct {
	cfg      ClientConfig
	rc       *retryablehttp.Client
	sem      chan struct{}
	classify Classifier
}

// MaxBody is the most of an answer a Client reads; targets answer small
// JSON. One byte more is read, so a caller can tell an answer over it.
const MaxBody = 1 << 20

// NewClient returns a client. classify nil means Classify.
func NewClient(cfg ClientConfig, classify Classifier) *Client {
	cfg = cfg.WithDefaults()
	if classify == nil {
		classify = Classify
	}
	hc := cleanhttp.DefaultPooledClient()
	hc.Timeout = cfg.Timeout
	// Keep a connection per call in flight: the pool's default keeps a few,
	// and every call beyond them would open (and leave in TIME_WAIT) a
	// connection of its own.
	hc.Transport.(*http.Transport).MaxIdleConnsPerHost = cfg.MaxInFlight
	c := &Client{cfg: cfg, sem: make(chan struct{}, cfg.MaxInFlight), classify: classify}
	c.rc = &retryablehttp.Client{
		HTTPClient:   hc,
		RetryWaitMin: cfg.RetryWaitMin,
		RetryWaitMax: cfg.RetryWaitMax,
		RetryMax:     cfg.Attempts - 1,
		CheckRetry:   c.checkRetry,
		Backoff:      c.backoff,
		// The last answer goes back to the target as it is, to be classified
		// once more and recorded; never a generic "giving up" error.
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	return c
}

// checkRetry buffers the answer (so the classifier, and later the target,
// can read it) and retries only what the classifier calls a transient
// failure of the target, and only when the target's Retry-After hint, if
// any, is short enough to wait for inside the call.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err == nil && resp != nil {
		buffer(resp)
	}
	out := c.classify(resp, err)
	if out.Verdict != storegate.VerdictRetry || out.Deferred {
		return false, nil
	}
	return out.RetryAfter <= c.cfg.RetryWaitMax, nil
}

// backoff waits the target's Retry-After when it gave one (checkRetry has
// capped it), else exponentially with "equal jitter".
func (c *Client) backoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if ra := RetryAfter(resp.Header.Get("Retry-After"), time.Now()); ra > 0 {
			return min(ra, hi)
		}
	}
	wait := min(lo<<min(attempt, 30), hi)
	return wait/2 + time.Duration(rand.Float64()*float64(wait/2))
}

// Do sends one request (retried in the call as configured) and returns the
// final answer, with its body read and re-readable through Body, and its
// classification. resp is nil when no answer came, and when the breaker is
// open: the outcome is then a wait, and no call was made.
func (c *Client) Do(ctx context.Context, method, url string, body []byte, header http.Header) (resp *http.Response, out storegate.Outcome) {
	// Waiting for a turn says nothing of the dependency's health, so it
	// comes before the breaker.
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, storegate.Outcome{Verdict: storegate.VerdictRetry, Code: "BUSY",
			Message: "too many calls in flight to this target; gave up waiting: " + ctx.Err().Error()}
	}
	defer func() { <-c.sem }()
	if c.cfg.Breaker == nil {
		return c.do(ctx, method, url, body, header)
	}
	out = c.cfg.Breaker.Do(func() storegate.Outcome {
		resp, out = c.do(ctx, method, url, body, header)
		return out
	})
	return resp, out
}

func (c *Client) do(ctx context.Context, method, url string, body []byte, header http.Header) (*http.Response, storegate.Outcome) {

	var raw io.Reader
	if body != nil {
		raw = bytes.NewReader(body)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, url, raw)
	if err != nil {
		return nil, storegate.Outcome{Verdict: storegate.VerdictDead, Code: "BAD_REQUEST", Message: err.Error()}
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.rc.Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return nil, c.classify(nil, err)
	}
	buffer(resp)
	return resp, c.classify(resp, nil)
}

// bufferedBody is an answer read into memory, so that the classifier and
// the target can both read it.
type bufferedBody struct {
	*bytes.Reader
	raw []byte
}

func (bufferedBody) Close() error { return nil }

// buffer reads the body (up to MaxBody, and a byte more) and replaces it with a re-readable
// copy. A body that fails mid-read keeps what arrived.
func buffer(resp *http.Response) {
	if resp.Body == nil {
		resp.Body = bufferedBody{Reader: bytes.NewReader(nil)}
		return
	}
	if b, ok := resp.Body.(bufferedBody); ok {
		b.Seek(0, io.SeekStart)
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	resp.Body.Close()
	resp.Body = bufferedBody{Reader: bytes.NewReader(raw), raw: raw}
}

// Body returns an answer's body as the Client read it, or reads it now.
func Body(resp *http.Response) []byte {
	if resp == nil {
		return nil
	}
	buffer(resp)
	return resp.Body.(bufferedBody).raw
}
