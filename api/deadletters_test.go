package api_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dispatcher"
)

func TestDeadLettersRoundTrip(t *testing.T) {
	e := newEnv(t)
	a1 := e.storeDeadLetter(t, "org_a", "a1", "permanent")
	b1 := e.storeDeadLetter(t, "org_b", "b1", "exhausted")
	a2 := e.storeDeadLetter(t, "org_a", "a2", "permanent")

	a := e.call(t, "GET", "/v1/dlq", nil)
	var page api.DeadLettersResponse
	a.decode(t, &page)
	if a.status != http.StatusOK || len(page.DeadLetters) != 3 || page.NextAfter != a2 {
		t.Fatalf("GET /v1/dlq: %d %s", a.status, a.body)
	}
	d := page.DeadLetters[1]
	if d.Seq != b1 || d.Tenant != "org_b" || d.JobID != "b1" || d.ErrorClass != "exhausted" || d.Error != "job b1 failed" ||
		d.HTTPStatus != 404 || d.Attempts != 1 || d.Op != "campaign.start" || d.Body == "" {
		t.Errorf("dead letter = %+v", d)
	}

	// One tenant, one page at a time.
	a = e.call(t, "GET", "/v1/dlq?tenant=org_a&limit=1", nil)
	page = api.DeadLettersResponse{}
	a.decode(t, &page)
	if len(page.DeadLetters) != 1 || page.DeadLetters[0].Seq != a1 || page.NextAfter != a1 {
		t.Fatalf("first page of org_a: %s", a.body)
	}
	a = e.call(t, "GET", fmt.Sprintf("/v1/dlq?tenant=org_a&limit=1&after=%d", page.NextAfter), nil)
	page = api.DeadLettersResponse{}
	a.decode(t, &page)
	if len(page.DeadLetters) != 1 || page.DeadLetters[0].Seq != a2 {
		t.Fatalf("second page of org_a: %s", a.body)
	}
	a = e.call(t, "GET", fmt.Sprintf("/v1/dlq?tenant=org_a&limit=1&after=%d", page.NextAfter), nil)
	page = api.DeadLettersResponse{}
	a.decode(t, &page)
	if a.status != http.StatusOK || len(page.DeadLetters) != 0 || page.NextAfter != a2 {
		t.Fatalf("end of org_a: %s", a.body)
	}

	a = e.call(t, "GET", fmt.Sprintf("/v1/dlq/%d", a1), nil)
	var one dispatcher.DeadLetter
	a.decode(t, &one)
	if a.status != http.StatusOK || one.JobID != "a1" {
		t.Errorf("GET /v1/dlq/%d: %d %s", a1, a.status, a.body)
	}

	// Replay: the job is queued again under a new message id, the dead
	// letter is gone.
	a = e.call(t, "POST", fmt.Sprintf("/v1/dlq/%d/replay", a1), nil)
	var res dispatcher.ReplayResult
	a.decode(t, &res)
	if a.status != http.StatusOK || res.Tenant != "org_a" || res.JobID != "a1" || res.JobSeq == 0 {
		t.Fatalf("replay: %d %s", a.status, a.body)
	}
	s, err := e.js.Stream(t.Context(), e.names.JobsStream("org_a"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(t.Context(), res.JobSeq)
	if err != nil || m.Subject != e.names.PriorityJobSubject("org_a", dispatcher.PriorityBulk, "campaign.start") || m.Header.Get(nats.MsgIdHdr) != res.MsgID {
		t.Errorf("replayed job in the stream: %+v, %v", m, err)
	}
	if a := e.call(t, "GET", fmt.Sprintf("/v1/dlq/%d", a1), nil); a.status != http.StatusNotFound {
		t.Errorf("replayed dead letter still there: %d", a.status)
	}
	if a := e.call(t, "POST", fmt.Sprintf("/v1/dlq/%d/replay", a1), nil); a.status != http.StatusNotFound {
		t.Errorf("second replay: %d, want 404", a.status)
	}

	// Delete.
	if a := e.call(t, "DELETE", fmt.Sprintf("/v1/dlq/%d", b1), nil); a.status != http.StatusNoContent {
		t.Errorf("delete: %d %s", a.status, a.body)
	}
	if a := e.call(t, "DELETE", fmt.Sprintf("/v1/dlq/%d", b1), nil); a.status != http.StatusNotFound {
		t.Errorf("second delete: %d, want 404", a.status)
	}
	a = e.call(t, "GET", "/v1/dlq", nil)
	page = api.DeadLettersResponse{}
	a.decode(t, &page)
	if len(page.DeadLetters) != 1 || page.DeadLetters[0].Seq != a2 {
		t.Errorf("after replay and delete: %s, want only %d", a.body, a2)
	}
}

func TestDeadLettersBadInput(t *testing.T) {
	e := newEnv(t)
	bad := nats.NewMsg(e.names.DLQSubject("org_a", "campaign.start"))
	bad.Data = []byte(`{"id":"x","op":"campaign.start"}`)
	ack, err := e.js.PublishMsg(t.Context(), bad)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/v1/dlq?limit=0", 400},
		{"GET", "/v1/dlq?limit=501", 400},
		{"GET", "/v1/dlq?limit=ten", 400},
		{"GET", "/v1/dlq?after=-1", 400},
		{"GET", "/v1/dlq?tenant=bad%20id", 400},
		{"GET", "/v1/dlq/0", 400},
		{"GET", "/v1/dlq/abc", 400},
		{"GET", "/v1/dlq/999", 404},
		{"POST", "/v1/dlq/abc/replay", 400},
		{"POST", "/v1/dlq/999/replay", 404},
		{"DELETE", "/v1/dlq/-3", 400},
		{"DELETE", "/v1/dlq/999", 404},
		// A job that can never run is not replayed.
		{"POST", fmt.Sprintf("/v1/dlq/%d/replay", ack.Sequence), 422},
	} {
		a := e.call(t, tc.method, tc.path, nil)
		if a.status != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, a.status, a.body, tc.want)
		}
		a.errorText(t)
	}
	if _, err := e.admin.DeadLetter(t.Context(), ack.Sequence); err != nil {
		t.Errorf("the unreplayable dead letter is gone: %v", err)
	}
}
