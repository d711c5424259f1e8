package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

const campaignJSON = `{"id":"c-1","name":"Spring <drive>","version":%d,"campaignStatus":%q,"dialingMode":"predictive","phoneColumns":[{"columnName":"phone"}],"abandonRate":2.5}`

func campaignBody(version int, status string) string {
	return fmt.Sprintf(campaignJSON, version, status)
}

func TestSetStatusGetsThenPutsFullBody(t *testing.T) {
	fp := newFakePlatform(t)
	fp.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, 200, campaignBody(7, "off"))
		case http.MethodPut:
			writeJSON(w, 200, campaignBody(8, "on"))
		}
	})
	var before int
	c := newTestClient(t, fp, func(c *Config) { c.BeforeRequest = func(context.Context) error { before++; return nil } })
	res, err := c.Do(context.Background(), OpCampaignSetStatus, json.RawMessage(`{"campaign_id":"c-1","status":"on"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 || !strings.Contains(string(res.Body), `"version":8`) {
		t.Fatalf("result = %d %s, want the PUT's answer", res.Status, res.Body)
	}
	calls := fp.apiRequests()
	if len(calls) != 2 || calls[0].method != "GET" || calls[1].method != "PUT" {
		t.Fatalf("requests = %+v, want GET then PUT", calls)
	}
	for _, call := range calls {
		if call.rawPath != "/api/v2/outbound/campaigns/c-1" {
			t.Fatalf("path = %s", call.rawPath)
		}
	}
	checkAPIHeaders(t, calls[0], "tok-1", false)
	checkAPIHeaders(t, calls[1], "tok-1", true)
	if !jsonEqual(t, calls[1].body, []byte(campaignBody(7, "on"))) {
		t.Fatalf("PUT body = %s, want the campaign with version 7 and status on", calls[1].body)
	}
	if !strings.Contains(string(calls[1].body), "<drive>") {
		t.Fatalf("PUT body = %s: the campaign's strings were re-escaped", calls[1].body)
	}
	if before != 2 {
		t.Fatalf("BeforeRequest called %d times, want 2 (GET and PUT)", before)
	}
}

func TestSetStatusRetriesOnceOnConflict(t *testing.T) {
	fp := newFakePlatform(t)
	version := 7
	fp.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case r.Method == http.MethodGet:
			writeJSON(w, 200, campaignBody(version, "on"))
		case n == 2: // the first PUT loses a race: someone else bumped the version
			version = 8
			writeJSON(w, 409, `{"status":409,"code":"conflict","message":"version mismatch"}`)
		default:
			writeJSON(w, 200, campaignBody(9, "off"))
		}
	})
	var before int
	c := newTestClient(t, fp, func(c *Config) { c.BeforeRequest = func(context.Context) error { before++; return nil } })
	res, err := c.Do(context.Background(), OpCampaignSetStatus, json.RawMessage(`{"campaign_id":"c-1","status":"off"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 {
		t.Fatalf("status %d", res.Status)
	}
	calls := fp.apiRequests()
	if len(calls) != 4 || before != 4 {
		t.Fatalf("%d requests, %d BeforeRequest calls; want GET PUT GET PUT", len(calls), before)
	}
	if !jsonEqual(t, calls[3].body, []byte(campaignBody(8, "off"))) {
		t.Fatalf("second PUT body = %s, want version 8 from the second GET", calls[3].body)
	}
}

func TestSetStatusSecondConflictIsPermanent(t *testing.T) {
	fp := newFakePlatform(t)
	fp.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method == http.MethodGet {
			writeJSON(w, 200, campaignBody(n, "on"))
			return
		}
		writeJSON(w, 409, `{"status":409,"code":"conflict","message":"version mismatch"}`)
	})
	c := newTestClient(t, fp, nil)
	_, err := c.Do(context.Background(), OpCampaignSetStatus, json.RawMessage(`{"campaign_id":"c-1","status":"off"}`))
	pe, ok := errors.AsType[*PermanentError](err)
	if !ok || pe.Status != 409 || pe.Code != "conflict" {
		t.Fatalf("Do = %v, want *PermanentError 409", err)
	}
	if n := len(fp.apiRequests()); n != 4 {
		t.Fatalf("%d requests, want 4 (one retry only)", n)
	}
}

func TestSetStatusAlreadySetSkipsPut(t *testing.T) {
	fp := newFakePlatform(t)
	fp.setAPI(func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, campaignBody(3, "on")) })
	c := newTestClient(t, fp, nil)
	res, err := c.Do(context.Background(), OpCampaignSetStatus, json.RawMessage(`{"campaign_id":"c-1","status":"on"}`))
	if err != nil || res.Status != 200 {
		t.Fatalf("Do = %+v, %v", res, err)
	}
	if calls := fp.apiRequests(); len(calls) != 1 || calls[0].method != "GET" {
		t.Fatalf("requests = %d, want the GET only", len(calls))
	}
}

func TestSetStatusErrors(t *testing.T) {
	tests := []struct {
		name  string
		api   func(w http.ResponseWriter, r *http.Request, n int)
		edit  func(*Config)
		check func(t *testing.T, err error)
		calls int
	}{
		{"get 404", func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 404, `{"code":"not.found"}`) }, nil,
			func(t *testing.T, err error) {
				if pe, ok := errors.AsType[*PermanentError](err); !ok || pe.Status != 404 {
					t.Fatalf("Do = %v", err)
				}
			}, 1},
		{"get 429", func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Retry-After", "9")
			writeJSON(w, 429, `{}`)
		}, nil, func(t *testing.T, err error) {
			if rl, ok := errors.AsType[*RateLimitError](err); !ok || rl.RetryAfter.Seconds() != 9 {
				t.Fatalf("Do = %v", err)
			}
		}, 1},
		{"put 429", func(w http.ResponseWriter, r *http.Request, n int) {
			if r.Method == http.MethodGet {
				writeJSON(w, 200, campaignBody(1, "off"))
				return
			}
			writeJSON(w, 429, `{}`)
		}, nil, func(t *testing.T, err error) {
			if _, ok := errors.AsType[*RateLimitError](err); !ok {
				t.Fatalf("Do = %v", err)
			}
		}, 2},
		{"get not an object", func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, `[1]`) }, nil,
			func(t *testing.T, err error) {
				if _, ok := errors.AsType[*TransientError](err); !ok {
					t.Fatalf("Do = %v", err)
				}
			}, 1},
		{"get truncated", func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, campaignBody(1, "off")) },
			func(c *Config) { c.MaxResponseBytes = 20 },
			func(t *testing.T, err error) {
				if _, ok := errors.AsType[*PermanentError](err); !ok {
					t.Fatalf("Do = %v", err)
				}
			}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := newFakePlatform(t)
			fp.setAPI(tt.api)
			c := newTestClient(t, fp, tt.edit)
			_, err := c.Do(context.Background(), OpCampaignSetStatus, json.RawMessage(`{"campaign_id":"c-1","status":"on"}`))
			tt.check(t, err)
			if n := len(fp.apiRequests()); n != tt.calls {
				t.Fatalf("%d requests, want %d", n, tt.calls)
			}
		})
	}
}

func TestSetStatusOnlyPutsAcceptedTransitions(t *testing.T) {
	tests := []struct {
		current, want string
		put           bool
		errType       string // "", "transient", "permanent"
	}{
		{StatusOn, StatusOff, true, ""},
		{StatusOff, StatusOn, true, ""},
		{StatusComplete, StatusOn, true, ""},
		{StatusInvalid, StatusOn, true, ""},
		{StatusForcedOff, StatusOn, true, ""},
		{StatusOn, StatusOn, false, ""},
		{StatusOff, StatusOff, false, ""},
		{StatusStopping, StatusOff, false, ""},
		{StatusForcedStopping, StatusOff, false, ""},
		{StatusForcedOff, StatusOff, false, ""},
		{StatusComplete, StatusOff, false, ""},
		{StatusStopping, StatusOn, false, "transient"},
		{StatusForcedStopping, StatusOn, false, "transient"},
		{"paused_by_martians", StatusOn, false, "permanent"},
	}
	for _, tt := range tests {
		t.Run(tt.current+"→"+tt.want, func(t *testing.T) {
			fp := newFakePlatform(t)
			fp.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("ININ-Correlation-Id", fmt.Sprintf("corr-%d", n))
				switch r.Method {
				case http.MethodGet:
					writeJSON(w, 200, campaignBody(3, tt.current))
				case http.MethodPut:
					writeJSON(w, 200, campaignBody(4, tt.want))
				}
			})
			c := newTestClient(t, fp, nil)
			res, err := c.Do(context.Background(), OpCampaignSetStatus, json.RawMessage(`{"campaign_id":"c-1","status":"`+tt.want+`"}`))
			calls := fp.apiRequests()
			puts := 0
			for _, call := range calls {
				if call.method == http.MethodPut {
					puts++
					if call.rawQuery != "useMaxCallsPerAgentDecimal=true" {
						t.Errorf("PUT query = %q, want useMaxCallsPerAgentDecimal=true", call.rawQuery)
					}
				}
			}
			if got := puts == 1; got != tt.put || puts > 1 {
				t.Fatalf("%d PUTs, want put=%v", puts, tt.put)
			}
			switch tt.errType {
			case "":
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				if !tt.put && res.CorrelationID != "corr-1" {
					t.Fatalf("result = %+v, want the GET's answer", res)
				}
			case "transient":
				if te, ok := errors.AsType[*TransientError](err); !ok || te.CorrelationID != "corr-1" {
					t.Fatalf("Do = %v, want a *TransientError with the GET's correlation id", err)
				}
			case "permanent":
				if _, ok := errors.AsType[*PermanentError](err); !ok {
					t.Fatalf("Do = %v, want a *PermanentError", err)
				}
			}
		})
	}
}

func TestStopWaitsUntilOff(t *testing.T) {
	for _, op := range []struct{ name, op, params string }{
		{"stop", OpCampaignStop, `{"campaign_id":"c-1","wait_until_off":"1m"}`},
		{"set_status off", OpCampaignSetStatus, `{"campaign_id":"c-1","status":"off","wait_until_off":"1m"}`},
	} {
		t.Run(op.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				status, stoppedAt := StatusOn, time.Time{}
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					defer mu.Unlock()
					if !stoppedAt.IsZero() && time.Since(stoppedAt) >= 5*time.Second {
						status = StatusOff
					}
					switch {
					case r.URL.Path == "/oauth/token":
						writeToken(w, "tok", 3600)
					case r.Method == http.MethodPost || r.Method == http.MethodPut:
						status, stoppedAt = StatusStopping, time.Now()
						if r.Method == http.MethodPost {
							w.WriteHeader(http.StatusNoContent)
							return
						}
						writeJSON(w, 200, campaignBody(2, status))
					default:
						writeJSON(w, 200, campaignBody(2, status))
					}
				})
				var before int
				c, err := New(Config{APIBase: "http://platform.test", TokenURL: "http://platform.test/oauth/token",
					ClientID: "id", ClientSecret: "secret", HTTPClient: &http.Client{Transport: handlerTransport{h}},
					BeforeRequest: func(context.Context) error { before++; return nil }})
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				res, err := c.Do(t.Context(), op.op, json.RawMessage(op.params))
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				if !strings.Contains(string(res.Body), `"campaignStatus":"off"`) {
					t.Fatalf("result = %s, want the campaign reporting off", res.Body)
				}
				if took := time.Since(start); took < 5*time.Second || took > 5*time.Second+defaultStatusPoll {
					t.Fatalf("returned after %s, want once the campaign was off (5s, polled every %s)", took, defaultStatusPoll)
				}
				if before < 3 {
					t.Fatalf("BeforeRequest called %d times: every poll must go through it", before)
				}
			})
		})
	}
	t.Run("gives up", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/oauth/token":
					writeToken(w, "tok", 3600)
				case r.Method == http.MethodPost:
					w.WriteHeader(http.StatusNoContent)
				default:
					writeJSON(w, 200, campaignBody(2, StatusStopping))
				}
			})
			c, err := New(Config{APIBase: "http://platform.test", TokenURL: "http://platform.test/oauth/token",
				ClientID: "id", ClientSecret: "secret", HTTPClient: &http.Client{Transport: handlerTransport{h}}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Do(t.Context(), OpCampaignStop, json.RawMessage(`{"campaign_id":"c-1","wait_until_off":"10s"}`))
			if te, ok := errors.AsType[*TransientError](err); !ok || !strings.Contains(te.Error(), "still stopping after 10s") {
				t.Fatalf("Do = %v, want a *TransientError saying it is still stopping", err)
			}
		})
	})
}

// handlerTransport serves requests from an http.Handler in memory, so a
// synctest bubble sees no real sockets.
type handlerTransport struct{ h http.Handler }

func (ht handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	ht.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}
