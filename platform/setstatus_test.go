package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
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
