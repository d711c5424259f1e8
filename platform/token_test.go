package platform

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTokenCachedAcrossCalls(t *testing.T) {
	fp := newFakePlatform(t)
	var fetched int
	c := newTestClient(t, fp, func(c *Config) { c.OnToken = func() { fetched++ } })
	for i := 0; i < 3; i++ {
		if _, err := c.Do(context.Background(), OpCampaignGet, getParams); err != nil {
			t.Fatal(err)
		}
	}
	checkTokenRequests(t, fp, 1)
	if fetched != 1 {
		t.Fatalf("OnToken called %d times, want 1", fetched)
	}
	for _, r := range fp.apiRequests() {
		if got := r.header.Get("Authorization"); got != "Bearer tok-1" {
			t.Fatalf("Authorization = %q", got)
		}
	}
}

func TestTokenRefreshedAheadOfExpiry(t *testing.T) {
	fp := newFakePlatform(t)
	clock := newFakeClock()
	c := newTestClient(t, fp, func(c *Config) { c.Now = clock.Now }) // TokenRefreshAhead default 60s; expires_in 3600
	do := func(wantToken string) {
		t.Helper()
		if _, err := c.Do(context.Background(), OpCampaignGet, getParams); err != nil {
			t.Fatal(err)
		}
		calls := fp.apiRequests()
		if got := calls[len(calls)-1].header.Get("Authorization"); got != "Bearer "+wantToken {
			t.Fatalf("at %v: Authorization = %q, want Bearer %s", clock.Now().Sub(testNow), got, wantToken)
		}
	}
	do("tok-1")
	clock.Set(testNow.Add(3600*time.Second - 61*time.Second))
	do("tok-1")
	clock.Set(testNow.Add(3600*time.Second - 60*time.Second)) // the refresh point
	do("tok-2")
	checkTokenRequests(t, fp, 2)
}

func TestTokenShortLifetimeRefreshedAtHalfLife(t *testing.T) {
	fp := newFakePlatform(t)
	fp.setToken(func(w http.ResponseWriter, r *http.Request, n int) { writeToken(w, fmt.Sprintf("tok-%d", n), 60) })
	clock := newFakeClock()
	c := newTestClient(t, fp, func(c *Config) { c.Now = clock.Now; c.TokenRefreshAhead = 10 * time.Minute })
	for _, step := range []struct {
		at     time.Duration
		tokens int
	}{{0, 1}, {29 * time.Second, 1}, {30 * time.Second, 2}} {
		clock.Set(testNow.Add(step.at))
		if _, err := c.Do(context.Background(), OpCampaignGet, getParams); err != nil {
			t.Fatal(err)
		}
		if n := len(fp.tokenRequests()); n != step.tokens {
			t.Fatalf("at %v: %d token requests, want %d", step.at, n, step.tokens)
		}
	}
}

func TestTokenFailedRefreshKeepsValidToken(t *testing.T) {
	fp := newFakePlatform(t)
	clock := newFakeClock()
	c := newTestClient(t, fp, func(c *Config) { c.Now = clock.Now })
	if _, err := c.Do(context.Background(), OpCampaignGet, getParams); err != nil {
		t.Fatal(err)
	}
	fp.setToken(func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 503, `{}`) })
	steps := []struct {
		at       time.Duration
		tokens   int  // token requests so far
		tokenErr bool // Do fails with a *TokenError
	}{
		{3545 * time.Second, 2, false}, // refresh fails; tok-1 is still valid and used
		{3549 * time.Second, 2, false}, // within the hold: no new attempt
		{3550 * time.Second, 3, false}, // hold over: try again, fail, keep tok-1
		{3600 * time.Second, 4, true},  // expired: nothing left to use
	}
	for _, s := range steps {
		clock.Set(testNow.Add(s.at))
		_, err := c.Do(context.Background(), OpCampaignGet, getParams)
		if _, isTokenErr := errors.AsType[*TokenError](err); isTokenErr != s.tokenErr || (!s.tokenErr && err != nil) {
			t.Fatalf("at %v: Do = %v, want token error %v", s.at, err, s.tokenErr)
		}
		if n := len(fp.tokenRequests()); n != s.tokens {
			t.Fatalf("at %v: %d token requests, want %d", s.at, n, s.tokens)
		}
	}
}

func TestDropTokenForcesNewFetch(t *testing.T) {
	fp := newFakePlatform(t)
	c := newTestClient(t, fp, nil)
	for i := 0; i < 2; i++ {
		if _, err := c.Do(context.Background(), OpCampaignGet, getParams); err != nil {
			t.Fatal(err)
		}
		c.DropToken()
	}
	checkTokenRequests(t, fp, 2)
	calls := fp.apiRequests()
	if calls[0].header.Get("Authorization") != "Bearer tok-1" || calls[1].header.Get("Authorization") != "Bearer tok-2" {
		t.Fatalf("tokens used: %q, %q", calls[0].header.Get("Authorization"), calls[1].header.Get("Authorization"))
	}
}

func TestUnauthorizedForgetsToken(t *testing.T) {
	fp := newFakePlatform(t)
	fp.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("Authorization") == "Bearer tok-1" {
			writeJSON(w, 401, `{"message":"Invalid login credentials.","code":"bad.credentials","status":401}`)
			return
		}
		writeJSON(w, 200, `{}`)
	})
	c := newTestClient(t, fp, nil)
	if _, err := c.Do(context.Background(), OpCampaignGet, getParams); err == nil {
		t.Fatal("want an *AuthError")
	} else if _, ok := errors.AsType[*AuthError](err); !ok {
		t.Fatalf("Do = %v, want *AuthError", err)
	}
	if _, err := c.Do(context.Background(), OpCampaignGet, getParams); err != nil {
		t.Fatalf("retry with a new token: %v", err)
	}
	checkTokenRequests(t, fp, 2)
}

func TestTokenConcurrentCallersShareOneFetch(t *testing.T) {
	const callers = 8
	fp := newFakePlatform(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	fp.setToken(func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			close(entered)
			<-release
		}
		writeToken(w, fmt.Sprintf("tok-%d", n), 3600)
	})
	c := newTestClient(t, fp, nil)
	waiting := make(chan struct{}, callers)
	c.tokens.testHookWait = func() { waiting <- struct{}{} }

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := 0; i < callers; i++ {
		wg.Go(func() {
			_, err := c.Do(context.Background(), OpCampaignGet, getParams)
			errs <- err
		})
	}
	<-entered // one caller is fetching
	for i := 0; i < callers-1; i++ {
		<-waiting // every other caller waits on that fetch
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	checkTokenRequests(t, fp, 1)
	calls := fp.apiRequests()
	if len(calls) != callers {
		t.Fatalf("API got %d requests, want %d", len(calls), callers)
	}
	for _, r := range calls {
		if got := r.header.Get("Authorization"); got != "Bearer tok-1" {
			t.Fatalf("Authorization = %q", got)
		}
	}
}

func TestTokenFetcherCanceledWaiterFetchesItself(t *testing.T) {
	fp := newFakePlatform(t)
	entered := make(chan struct{})
	fp.setToken(func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			close(entered)
			<-r.Context().Done() // the first caller gives up
			return
		}
		writeToken(w, fmt.Sprintf("tok-%d", n), 3600)
	})
	c := newTestClient(t, fp, nil)
	waiting := make(chan struct{}, 1)
	c.tokens.testHookWait = func() { waiting <- struct{}{} }

	ctx1, cancel1 := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx1, OpCampaignGet, getParams)
		first <- err
	}()
	<-entered
	second := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), OpCampaignGet, getParams)
		second <- err
	}()
	<-waiting
	cancel1()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v, want context.Canceled", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("second caller: %v", err)
	}
	if n := len(fp.tokenRequests()); n != 2 {
		t.Fatalf("%d token requests, want 2", n)
	}
}

func TestTokenRejected(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		code   string
	}{
		{"invalid_client 401", 401, `{"error":"invalid_client","description":"client secret ` + testSecret + ` is wrong","error_description":"bad secret ` + testSecret + `"}`, "invalid_client"},
		{"invalid_grant 400", 400, `{"error":"invalid_grant","error_description":"` + testSecret + `"}`, "invalid_grant"},
		{"unauthorized_client 400", 400, `{"error":"unauthorized_client"}`, "unauthorized_client"},
		{"secret echoed in code", 401, `{"error":"` + testSecret + `"}`, ""},
		{"not json", 401, `denied for ` + testSecret, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := newFakePlatform(t)
			fp.setToken(func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, tt.status, tt.body) })
			var fetched int
			c := newTestClient(t, fp, func(c *Config) { c.OnToken = func() { fetched++ } })
			_, err := c.Do(context.Background(), OpCampaignGet, getParams)
			te, ok := errors.AsType[*TokenError](err)
			if !ok {
				t.Fatalf("Do = %v (%T), want *TokenError", err, err)
			}
			if !te.Rejected || te.Status != tt.status || te.Code != tt.code {
				t.Fatalf("TokenError = {Rejected:%v Status:%d Code:%q}, want {true %d %q}", te.Rejected, te.Status, te.Code, tt.status, tt.code)
			}
			assertNoSecret(t, err)
			if len(fp.apiRequests()) != 0 || fetched != 0 {
				t.Fatalf("API requests %d, OnToken %d: want none", len(fp.apiRequests()), fetched)
			}
		})
	}
}

func TestTokenEndpointUnavailable(t *testing.T) {
	t.Run("503", func(t *testing.T) {
		fp := newFakePlatform(t)
		fp.setToken(func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, 503, `{"error":"temporarily_unavailable","error_description":"`+testSecret+`"}`)
		})
		c := newTestClient(t, fp, nil)
		_, err := c.Do(context.Background(), OpCampaignGet, getParams)
		te, ok := errors.AsType[*TokenError](err)
		if !ok || te.Rejected || te.Status != 503 {
			t.Fatalf("Do = %#v, want *TokenError{Rejected:false, Status:503}", err)
		}
		assertNoSecret(t, err)
	})
	t.Run("refused", func(t *testing.T) {
		fp := newFakePlatform(t)
		c := newTestClient(t, fp, func(c *Config) { c.TokenURL = "http://" + deadAddr(t) + "/oauth/token" })
		_, err := c.Do(context.Background(), OpCampaignGet, getParams)
		te, ok := errors.AsType[*TokenError](err)
		if !ok || te.Rejected || te.Status != 0 {
			t.Fatalf("Do = %v, want *TokenError{Rejected:false, Status:0}", err)
		}
		assertNoSecret(t, err)
		if len(fp.apiRequests()) != 0 {
			t.Fatal("API called without a token")
		}
	})
	t.Run("429 with Retry-After is honoured for every caller", func(t *testing.T) {
		fp := newFakePlatform(t)
		fp.setToken(func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				w.Header().Set("Retry-After", "30")
				w.Header().Set("ININ-Correlation-Id", "corr-tok")
				writeJSON(w, 429, `{"message":"Rate limit exceeded the maximum. Retry the request in [30] seconds","code":"too.many.requests.retry.after","status":429}`)
				return
			}
			writeToken(w, "tok-2", 3600)
		})
		clock := newFakeClock()
		c := newTestClient(t, fp, func(c *Config) { c.Now = clock.Now })
		_, err := c.Do(context.Background(), OpCampaignGet, getParams)
		te, ok := errors.AsType[*TokenError](err)
		if !ok || te.Rejected || te.Status != 429 || te.RetryAfter != 30*time.Second || te.CorrelationID != "corr-tok" {
			t.Fatalf("Do = %#v, want *TokenError{Status:429, RetryAfter:30s, CorrelationID:corr-tok}", err)
		}
		clock.Set(testNow.Add(20 * time.Second))
		_, err = c.Do(context.Background(), OpCampaignGet, getParams)
		if te, ok := errors.AsType[*TokenError](err); !ok || te.RetryAfter != 10*time.Second {
			t.Fatalf("Do within Retry-After = %v, want the same *TokenError with 10s left", err)
		}
		if n := len(fp.tokenRequests()); n != 1 {
			t.Fatalf("token endpoint asked %d times within its Retry-After, want 1", n)
		}
		clock.Set(testNow.Add(30 * time.Second))
		if _, err := c.Do(context.Background(), OpCampaignGet, getParams); err != nil {
			t.Fatalf("Do after Retry-After: %v", err)
		}
	})
	t.Run("no access_token", func(t *testing.T) {
		fp := newFakePlatform(t)
		fp.setToken(func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, `{"token_type":"bearer"}`) })
		c := newTestClient(t, fp, nil)
		_, err := c.Do(context.Background(), OpCampaignGet, getParams)
		if te, ok := errors.AsType[*TokenError](err); !ok || te.Rejected {
			t.Fatalf("Do = %v, want *TokenError{Rejected:false}", err)
		}
	})
}

// assertNoSecret fails if err, formatted any way, or anything it wraps
// mentions the client secret.
func assertNoSecret(t *testing.T, err error) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		for _, s := range []string{e.Error(), fmt.Sprintf("%v", e), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
			if strings.Contains(s, testSecret) || strings.Contains(s, "s3cr3t") {
				t.Fatalf("error text contains the secret: %s", s)
			}
		}
	}
}

func TestTokenLifetimeVariants(t *testing.T) {
	tests := []struct {
		name       string
		answer     func(w http.ResponseWriter, n int)
		cachedAt   time.Duration // still using the first token
		refetchAt  time.Duration // a second token is fetched
		wantTokens int
	}{
		{"form encoded", func(w http.ResponseWriter, n int) {
			w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
			fmt.Fprintf(w, "access_token=tok-%d&token_type=bearer&expires_in=120", n)
		}, 55 * time.Second, 61 * time.Second, 2},
		{"no expires_in", func(w http.ResponseWriter, n int) {
			writeJSON(w, 200, fmt.Sprintf(`{"access_token":"tok-%d","token_type":"bearer"}`, n))
		}, defaultTokenLifetime - 61*time.Second, defaultTokenLifetime - 59*time.Second, 2},
		{"absurd expires_in", func(w http.ResponseWriter, n int) { writeToken(w, fmt.Sprintf("tok-%d", n), 1<<62) },
			300 * 24 * time.Hour, maxTokenLifetime, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := newFakePlatform(t)
			fp.setToken(func(w http.ResponseWriter, r *http.Request, n int) { tt.answer(w, n) })
			clock := newFakeClock()
			c := newTestClient(t, fp, func(c *Config) { c.Now = clock.Now })
			for _, at := range []time.Duration{0, tt.cachedAt, tt.refetchAt} {
				clock.Set(testNow.Add(at))
				if _, err := c.Do(context.Background(), OpCampaignGet, getParams); err != nil {
					t.Fatalf("at %v: %v", at, err)
				}
			}
			calls := fp.apiRequests()
			if got := []string{calls[0].header.Get("Authorization"), calls[1].header.Get("Authorization"), calls[2].header.Get("Authorization")}; got[0] != "Bearer tok-1" || got[1] != "Bearer tok-1" || got[2] != "Bearer tok-2" {
				t.Fatalf("tokens used: %v", got)
			}
		})
	}
}

func TestTokenWaiterDeadline(t *testing.T) {
	fp := newFakePlatform(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	fp.setToken(func(w http.ResponseWriter, r *http.Request, n int) {
		close(entered)
		<-release
		writeToken(w, "tok-1", 3600)
	})
	c := newTestClient(t, fp, nil)
	first := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), OpCampaignGet, getParams)
		first <- err
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Do(ctx, OpCampaignGet, getParams)
	if te, ok := errors.AsType[*TokenError](err); !ok || te.Rejected || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter past its deadline: %v, want *TokenError{Rejected:false} wrapping DeadlineExceeded", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("fetching caller: %v", err)
	}
}

func TestTokenSourceRedacts(t *testing.T) {
	ts := newTokenSource(Config{ClientID: "id", ClientSecret: "p@ss word", TokenURL: "http://x/oauth/token"}, http.DefaultClient)
	for _, msg := range []string{"failed: p@ss word", "failed: p%40ss+word", "Basic aWQ6cCU0MHNzK3dvcmQ="} {
		if got := ts.redact(errors.New(msg)).Error(); strings.Contains(got, "ss") {
			t.Errorf("redact(%q) = %q", msg, got)
		}
	}
	plain := errors.New("dial tcp: connection refused")
	if got := ts.redact(plain); got != plain {
		t.Errorf("redact changed a harmless error: %v", got)
	}
	for code, want := range map[string]string{"invalid_client": "invalid_client", "a b": "", "p@ss word": "", strings.Repeat("x", 65): ""} {
		if got := ts.safeCode(code); got != want {
			t.Errorf("safeCode(%q) = %q, want %q", code, got, want)
		}
	}
}
