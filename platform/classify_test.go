package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

var getParams = json.RawMessage(`{"campaign_id":"c-1"}`)

func TestDoClassifiesAnswers(t *testing.T) {
	const errJSON = `{"status":%d,"code":%q,"message":"it failed","contextId":"ctx-7","details":[],"errors":[]}`
	type answer struct {
		status  int
		headers map[string]string
		body    string
	}
	tests := []struct {
		name  string
		ans   answer
		check func(t *testing.T, res *Result, err error)
	}{
		{"200", answer{200, map[string]string{"inin-ratelimit-allowed": "300", "inin-ratelimit-count": "6", "inin-ratelimit-reset": "38"}, `{"id":"c-1"}`},
			func(t *testing.T, res *Result, err error) {
				wantResult(t, res, err, 200, `{"id":"c-1"}`)
				if want := (RateLimit{Present: true, Allowed: 300, Count: 6, Reset: 38 * time.Second}); res.Headers != want {
					t.Fatalf("Headers = %+v, want %+v", res.Headers, want)
				}
			}},
		{"201", answer{201, nil, `{"ok":1}`}, func(t *testing.T, res *Result, err error) { wantResult(t, res, err, 201, `{"ok":1}`) }},
		{"202", answer{202, nil, ``}, func(t *testing.T, res *Result, err error) { wantResult(t, res, err, 202, ``) }},
		{"204", answer{204, nil, ``}, func(t *testing.T, res *Result, err error) { wantResult(t, res, err, 204, ``) }},
		{"400", answer{400, nil, fmt.Sprintf(errJSON, 400, "bad.request")}, wantPermanent(400, "bad.request")},
		{"403", answer{403, nil, fmt.Sprintf(errJSON, 403, "missing.permissions")}, wantPermanent(403, "missing.permissions")},
		{"404", answer{404, nil, fmt.Sprintf(errJSON, 404, "not.found")}, wantPermanent(404, "not.found")},
		{"409", answer{409, nil, fmt.Sprintf(errJSON, 409, "conflict")}, wantPermanent(409, "conflict")},
		{"413", answer{413, nil, fmt.Sprintf(errJSON, 413, "request.too.large")}, wantPermanent(413, "request.too.large")},
		{"422", answer{422, nil, fmt.Sprintf(errJSON, 422, "invalid.value")}, wantPermanent(422, "invalid.value")},
		{"418 other 4xx", answer{418, nil, `not json`}, func(t *testing.T, res *Result, err error) {
			pe := wantType[*PermanentError](t, res, err)
			if pe.Status != 418 || pe.Code != "" || pe.Message != "I'm a teapot" || string(pe.Body) != "not json" {
				t.Fatalf("PermanentError = %+v", pe)
			}
		}},
		{"302 not followed", answer{302, map[string]string{"Location": "/elsewhere"}, ``}, func(t *testing.T, res *Result, err error) {
			if pe := wantType[*PermanentError](t, res, err); pe.Status != 302 {
				t.Fatalf("Status = %d", pe.Status)
			}
		}},
		{"401", answer{401, nil, `{"message":"Invalid login credentials.","code":"bad.credentials","status":401}`}, func(t *testing.T, res *Result, err error) {
			ae := wantType[*AuthError](t, res, err)
			if ae.Status != 401 || ae.Code != "bad.credentials" || ae.Message != "Invalid login credentials." {
				t.Fatalf("AuthError = %+v", ae)
			}
		}},
		{"408", answer{408, nil, ``}, wantTransient(408)},
		{"500", answer{500, nil, fmt.Sprintf(errJSON, 500, "internal.server.error")}, wantTransient(500)},
		{"502", answer{502, nil, `<html>bad gateway</html>`}, wantTransient(502)},
		{"503", answer{503, nil, ``}, wantTransient(503)},
		{"504", answer{504, nil, ``}, wantTransient(504)},
		{"429 seconds", answer{429, map[string]string{"Retry-After": "30", "inin-ratelimit-allowed": "300", "inin-ratelimit-count": "301", "inin-ratelimit-reset": "12"},
			`{"status":429,"code":"too.many.requests","message":"Rate limit exceeded the maximum [300] requests within [60] seconds","contextId":"ctx-9","details":[],"errors":[]}`},
			func(t *testing.T, res *Result, err error) {
				rl := wantRateLimit(t, res, err, 30*time.Second)
				if rl.Code != "too.many.requests" || rl.CorrelationID != "ctx-9" || !strings.Contains(rl.Message, "[300]") || rl.Limit != nil {
					t.Fatalf("RateLimitError = %+v", rl)
				}
				if want := (RateLimit{Present: true, Allowed: 300, Count: 301, Reset: 12 * time.Second}); rl.Headers != want {
					t.Fatalf("Headers = %+v, want %+v", rl.Headers, want)
				}
			}},
		{"429 normalized with limit", answer{429, map[string]string{"Retry-After": "42", "ININ-Correlation-Id": "corr-429"},
			`{"message":"Rate limit exceeded the maximum. Retry the request in [42] seconds","code":"too.many.requests.retry.after","status":429,"contextId":"corr-429","details":[],"errors":[],"limit":{"key":"client.credentials.token.rate.per.minute","namespace":"platform.api","value":300}}`},
			func(t *testing.T, res *Result, err error) {
				rl := wantRateLimit(t, res, err, 42*time.Second)
				want := Limit{Key: LimitKeyTokenRate, Namespace: NamespacePlatformAPI, Value: 300}
				if rl.Limit == nil || *rl.Limit != want || rl.Headers.Present || rl.CorrelationID != "corr-429" || rl.Code != "too.many.requests.retry.after" {
					t.Fatalf("RateLimitError = %+v (limit %+v)", rl, rl.Limit)
				}
				if CorrelationID(fmt.Errorf("wrapped: %w", err)) != "corr-429" || !strings.Contains(err.Error(), "correlation id corr-429") {
					t.Fatalf("correlation id not reachable from %q", err)
				}
			}},
		{"503 with Retry-After", answer{503, map[string]string{"Retry-After": "7", "ININ-Correlation-Id": "corr-503"}, fmt.Sprintf(errJSON, 503, "service.unavailable")},
			func(t *testing.T, res *Result, err error) {
				te := wantType[*TransientError](t, res, err)
				if te.Status != 503 || te.RetryAfter != 7*time.Second || te.CorrelationID != "corr-503" {
					t.Fatalf("TransientError = %+v", te)
				}
			}},
		{"429 http date vs Date header", answer{429, map[string]string{
			"Date":        testNow.Add(-time.Hour).Format(http.TimeFormat), // the server's clock is an hour behind: no matter
			"Retry-After": testNow.Add(-time.Hour + 90*time.Second).Format(http.TimeFormat)}, ``},
			func(t *testing.T, res *Result, err error) { wantRateLimit(t, res, err, 90*time.Second) }},
		{"429 http date without Date header", answer{429, map[string]string{"Date": "", "Retry-After": testNow.Add(75 * time.Second).Format(http.TimeFormat)}, ``},
			func(t *testing.T, res *Result, err error) { wantRateLimit(t, res, err, 75*time.Second) }},
		{"429 reset only", answer{429, map[string]string{"inin-ratelimit-reset": "38"}, ``},
			func(t *testing.T, res *Result, err error) { wantRateLimit(t, res, err, 39*time.Second) }},
		{"429 garbage retry-after falls back to reset", answer{429, map[string]string{"Retry-After": "-3", "inin-ratelimit-reset": "5"}, ``},
			func(t *testing.T, res *Result, err error) { wantRateLimit(t, res, err, 6*time.Second) }},
		{"429 neither", answer{429, nil, `{"code":"too.many.requests.retry.after"}`},
			func(t *testing.T, res *Result, err error) {
				if rl := wantRateLimit(t, res, err, 45*time.Second); rl.Code != "too.many.requests.retry.after" {
					t.Fatalf("Code = %q", rl.Code)
				}
			}},
		{"429 capped", answer{429, map[string]string{"Retry-After": "100000"}, ``},
			func(t *testing.T, res *Result, err error) { wantRateLimit(t, res, err, 5*time.Minute) }},
		{"429 reset capped", answer{429, map[string]string{"inin-ratelimit-reset": "999999"}, ``},
			func(t *testing.T, res *Result, err error) { wantRateLimit(t, res, err, 5*time.Minute) }},
		{"429 zero floored", answer{429, map[string]string{"Retry-After": "0"}, ``},
			func(t *testing.T, res *Result, err error) { wantRateLimit(t, res, err, time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := newFakePlatform(t)
			fp.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
				for k, v := range tt.ans.headers {
					if v == "" {
						w.Header()[k] = nil // suppress the server's automatic header
					} else {
						w.Header().Set(k, v)
					}
				}
				writeJSON(w, tt.ans.status, tt.ans.body)
			})
			var statuses []int
			sends := 0
			clock := newFakeClock()
			c := newTestClient(t, fp, func(c *Config) {
				c.Now = clock.Now
				c.DefaultRetryAfter = 45 * time.Second
				c.MaxRetryAfter = 5 * time.Minute
				c.OnSend = func() { sends++ }
				c.OnResponse = func(status int, _ RateLimit, _ time.Duration) { statuses = append(statuses, status) }
			})
			res, err := c.Do(context.Background(), OpCampaignGet, getParams)
			tt.check(t, res, err)
			if err != nil && (strings.Contains(err.Error(), "tok-1") || !strings.HasPrefix(err.Error(), "platform: ")) {
				t.Fatalf("error text %q: want a platform error without the token", err)
			}
			if len(statuses) != 1 || statuses[0] != tt.ans.status {
				t.Fatalf("OnResponse saw %v, want [%d]", statuses, tt.ans.status)
			}
			if sends != 1 {
				t.Fatalf("OnSend called %d times, want 1 (one per OnResponse)", sends)
			}
		})
	}
}

func wantResult(t *testing.T, res *Result, err error, status int, body string) {
	t.Helper()
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if res.Status != status || string(res.Body) != body || res.Truncated {
		t.Fatalf("Result = %d %q truncated=%v; want %d %q", res.Status, res.Body, res.Truncated, status, body)
	}
}

func wantType[E error](t *testing.T, res *Result, err error) E {
	t.Helper()
	if res != nil {
		t.Fatalf("Result %+v with error %v", res, err)
	}
	e, ok := errors.AsType[E](err)
	if !ok {
		var zero E
		t.Fatalf("error = %v (%T), want %T", err, err, zero)
	}
	return e
}

func wantPermanent(status int, code string) func(*testing.T, *Result, error) {
	return func(t *testing.T, res *Result, err error) {
		t.Helper()
		pe := wantType[*PermanentError](t, res, err)
		if pe.Status != status || pe.Code != code || pe.Message != "it failed" || pe.CorrelationID != "ctx-7" || !strings.Contains(string(pe.Body), code) {
			t.Fatalf("PermanentError = %+v", pe)
		}
	}
}

func wantTransient(status int) func(*testing.T, *Result, error) {
	return func(t *testing.T, res *Result, err error) {
		t.Helper()
		if te := wantType[*TransientError](t, res, err); te.Status != status {
			t.Fatalf("TransientError.Status = %d, want %d", te.Status, status)
		}
	}
}

func wantRateLimit(t *testing.T, res *Result, err error, retryAfter time.Duration) *RateLimitError {
	t.Helper()
	rl := wantType[*RateLimitError](t, res, err)
	if rl.RetryAfter != retryAfter {
		t.Fatalf("RetryAfter = %v, want %v", rl.RetryAfter, retryAfter)
	}
	return rl
}

func TestDoCapsSuccessBody(t *testing.T) {
	fp := newFakePlatform(t)
	fp.setAPI(func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, strings.Repeat("x", 100)) })
	c := newTestClient(t, fp, func(c *Config) { c.MaxResponseBytes = 10 })
	res, err := c.Do(context.Background(), OpCampaignGet, getParams)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != strings.Repeat("x", 10) || !res.Truncated {
		t.Fatalf("Result = %q truncated=%v", res.Body, res.Truncated)
	}
	fp.setAPI(func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, strings.Repeat("y", 10)) })
	if res, err = c.Do(context.Background(), OpCampaignGet, getParams); err != nil || string(res.Body) != strings.Repeat("y", 10) || res.Truncated {
		t.Fatalf("exactly the cap: %+v, %v", res, err)
	}
}

func TestDoTimeoutIsTransient(t *testing.T) {
	fp := newFakePlatform(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // runs before the server closes
	fp.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	var statuses []int
	sends := 0
	c := newTestClient(t, fp, func(c *Config) {
		c.HTTPClient = &http.Client{Timeout: 200 * time.Millisecond} // also bounds the token fetch: not too tight
		c.OnSend = func() { sends++ }
		c.OnResponse = func(status int, _ RateLimit, _ time.Duration) { statuses = append(statuses, status) }
	})
	_, err := c.Do(context.Background(), OpCampaignGet, getParams)
	if te := wantType[*TransientError](t, nil, err); te.Status != 0 {
		t.Fatalf("Status = %d, want 0", te.Status)
	}
	if len(statuses) != 1 || statuses[0] != 0 || sends != 1 {
		t.Fatalf("OnResponse saw %v and OnSend %d calls, want [0] and 1", statuses, sends)
	}

}

func TestDoCallerDeadlineIsTransient(t *testing.T) {
	fp := newFakePlatform(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	fp.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			writeJSON(w, 200, `{}`) // the first call fetches and caches the token
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c := newTestClient(t, fp, nil)
	if _, err := c.Do(context.Background(), OpCampaignGet, getParams); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Do(ctx, OpCampaignGet, getParams)
	wantType[*TransientError](t, nil, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v does not wrap context.DeadlineExceeded", err)
	}
}

func TestDoCancelIsNotAFailure(t *testing.T) {
	fp := newFakePlatform(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	fp.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		close(entered)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c := newTestClient(t, fp, nil)
	shutdown := errors.New("shutting down")
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		<-entered
		cancel(shutdown)
	}()
	_, err := c.Do(ctx, OpCampaignGet, getParams)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, shutdown) {
		t.Fatalf("error %v: want it to wrap context.Canceled and the cause", err)
	}
	for _, target := range []any{new(*TransientError), new(*PermanentError), new(*TokenError), new(*RateLimitError), new(*AuthError)} {
		if errors.As(err, target) {
			t.Fatalf("a cancellation classified as %T: %v", target, err)
		}
	}
	// Already canceled: nothing is sent.
	before := len(fp.apiRequests())
	if _, err := c.Do(ctx, OpCampaignGet, getParams); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do on a canceled ctx = %v", err)
	}
	if after := len(fp.apiRequests()); after != before {
		t.Fatalf("a request was sent on a canceled ctx")
	}
}

func TestDoConnectionRefusedIsTransient(t *testing.T) {
	fp := newFakePlatform(t)
	dead := deadAddr(t)
	var statuses []int
	c := newTestClient(t, fp, func(c *Config) {
		c.APIBase = "http://" + dead
		c.OnResponse = func(status int, _ RateLimit, _ time.Duration) { statuses = append(statuses, status) }
	})
	_, err := c.Do(context.Background(), OpCampaignGet, getParams)
	if te := wantType[*TransientError](t, nil, err); te.Status != 0 {
		t.Fatalf("Status = %d", te.Status)
	}
	if len(statuses) != 1 || statuses[0] != 0 {
		t.Fatalf("OnResponse saw %v, want [0]", statuses)
	}
}

func TestDoConnectionResetIsTransient(t *testing.T) {
	fp := newFakePlatform(t)
	fp.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with RST
		}
		_ = conn.Close()
	})
	c := newTestClient(t, fp, nil)
	_, err := c.Do(context.Background(), OpCampaignStart, getParams)
	if te := wantType[*TransientError](t, nil, err); te.Status != 0 {
		t.Fatalf("Status = %d", te.Status)
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestBeforeRequestHook(t *testing.T) {
	fp := newFakePlatform(t)
	var calls int
	stop := errors.New("tenant paused")
	var fail bool
	c := newTestClient(t, fp, func(c *Config) {
		c.BeforeRequest = func(ctx context.Context) error {
			calls++
			if fail {
				return stop
			}
			return nil
		}
	})
	if _, err := c.Do(context.Background(), OpCampaignStart, getParams); err != nil || calls != 1 {
		t.Fatalf("Do: %v, BeforeRequest calls %d", err, calls)
	}
	fail = true
	_, err := c.Do(context.Background(), OpCampaignStart, getParams)
	if !errors.Is(err, stop) {
		t.Fatalf("Do = %v, want it to wrap the hook's error", err)
	}
	if n := len(fp.apiRequests()); n != 1 {
		t.Fatalf("API got %d requests: the aborted one was sent", n)
	}
}

func TestErrorStrings(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&RateLimitError{RetryAfter: 30 * time.Second, Code: "too.many.requests"}, "platform: rate limited (429 too.many.requests), retry after 30s"},
		{&AuthError{Status: 401, Code: "bad.credentials", Message: "Invalid login credentials."}, "platform: unauthorized (401 bad.credentials): Invalid login credentials."},
		{&PermanentError{Status: 404, Code: "not.found", Message: "gone"}, "platform: 404 not.found: gone"},
		{&PermanentError{Status: 418, Message: "I'm a teapot"}, "platform: 418: I'm a teapot"},
		{&TransientError{Status: 503, Err: errors.New("GET /x: busy")}, "platform: transient failure (503): GET /x: busy"},
		{&TransientError{Err: errors.New("refused")}, "platform: transient failure: refused"},
		{&TokenError{Rejected: true, Status: 401, Code: "invalid_client"}, "platform: token request rejected (401 invalid_client)"},
		{&TokenError{Err: errors.New("token endpoint answered 503")}, "platform: token endpoint unavailable: token endpoint answered 503"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestCleanText(t *testing.T) {
	if got := cleanText("a\nb\x00c\xffd", 100); got != "a b c\uFFFDd" {
		t.Errorf("cleanText = %q", got)
	}
	if got := cleanText(strings.Repeat("é", 10), 5); got != "éé…" {
		t.Errorf("cleanText truncation = %q", got)
	}
}
