package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
)

// bigErrorBody is an error as a platform might quote it in full: a large
// body with line breaks, quotes and characters JSON escapes.
var bigErrorBody = "dead: platform answered 400: " + strings.Repeat("{\"message\":\"<bad> campaign & contact list\",\n\t\"code\":\"bad.request\"}\r\n", 2000)

// manyLanes is the figures of n tenants' lanes, each with a large error.
func manyLanes(n int, replica string) []dispatcher.LaneReport {
	out := make([]dispatcher.LaneReport, n)
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	lastErr := laneError(replica + " " + bigErrorBody)
	for i := range out {
		out[i] = dispatcher.LaneReport{
			Tenant: fmt.Sprintf("org_%05d", i), State: dispatcher.LaneRunning,
			Succeeded: uint64(i), Retried: 7, Dead: 3, RateLimited: 1, RatePerSec: 2.5, DonePerSec: 1.25,
			LastError: lastErr, LastErrorAt: at,
		}
	}
	return out
}

// bucketValues returns every current value of a bucket.
func bucketValues(t *testing.T, js jetstream.JetStream, bucket string) map[string][]byte {
	t.Helper()
	kv, err := js.KeyValue(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.WatchAll(t.Context(), jetstream.IgnoreDeletes())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	out := map[string][]byte{}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return out
			}
			out[e.Key()] = e.Value()
		case <-timeout:
			t.Fatalf("reading bucket %s timed out", bucket)
		}
	}
}

// Two replicas with 10,000 tenants each, every lane with a large error:
// the figures would make one value of megabytes, past the server's 1 MiB
// message limit. The replicas still see each other, and readers get every
// lane's figures, from values that all stay small.
func TestHeartbeatWith10000Tenants(t *testing.T) {
	const tenantCount = 10_000
	_, nc, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := dispatcher.Provision(ctx, js, names, dispatcher.StreamConfig{}, nil); err != nil {
		t.Fatal(err)
	}

	reports := map[string][]dispatcher.LaneReport{"r1": manyLanes(tenantCount, "r1"), "r2": manyLanes(tenantCount, "r2")}
	if old, _ := json.Marshal(dispatcher.Heartbeat{Replica: "r1", Lanes: reports["r1"]}); len(old) <= 1<<20 {
		t.Fatalf("the figures in one value are %d bytes: not past the 1 MiB limit, so this test would prove nothing", len(old))
	}
	pools := map[string]*Pool{}
	for _, id := range []string{"r1", "r2"} {
		p, err := New(Config{JS: js, Conn: nc, Names: names, ReplicaID: id, Logger: testLogger(t), HeartbeatInterval: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		p.laneReports = func() []dispatcher.LaneReport { return reports[id] }
		pools[id] = p
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(runCtx) }()
		t.Cleanup(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("Run %s: %v", id, err)
			}
		})
	}
	start := time.Now()
	replicas, err := js.KeyValue(t.Context(), names.ReplicasBucket())
	if err != nil {
		t.Fatal(err)
	}
	// Announced: the heartbeat names as many pages as the replica wrote,
	// and (the figures are of some 900 bytes a lane) many.
	announced := func(id string) bool {
		e, err := replicas.Get(t.Context(), id)
		var hb dispatcher.Heartbeat
		return err == nil && json.Unmarshal(e.Value(), &hb) == nil && hb.Pages > 100 && hb.Pages == int(pools[id].pages.Load())
	}
	eventually(t, "both replicas live for each other, their figures written and announced", 20*time.Second, func() bool {
		return pools["r1"].liveReplicas() == 2 && pools["r2"].liveReplicas() == 2 && announced("r1") && announced("r2")
	})
	t.Logf("%d tenants × 2 replicas: live and announced after %v, %d pages each", tenantCount, time.Since(start).Round(time.Millisecond), pools["r1"].pages.Load())

	var total int
	for bucket, limit := range map[string]int{names.ReplicasBucket(): 256, names.LanesBucket(): dispatcher.MaxLanePageBytes} {
		for key, v := range bucketValues(t, js, bucket) {
			total += len(v)
			if len(v) > limit {
				t.Errorf("%s/%s is %d bytes, want at most %d", bucket, key, len(v), limit)
			}
		}
	}
	t.Logf("both buckets: %d bytes in all (%v)", total, time.Since(start).Round(time.Millisecond))

	lanes, err := dispatcher.NewAdmin(js, names).Lanes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("read by Admin.Lanes (%v)", time.Since(start).Round(time.Millisecond))
	if len(lanes) != tenantCount {
		t.Errorf("readers got the figures of %d tenants, want %d", len(lanes), tenantCount)
	}
	for i := range tenantCount {
		id := fmt.Sprintf("org_%05d", i)
		ls := lanes[id]
		if len(ls) != 2 {
			t.Fatalf("%s: %d replicas' figures, want 2: %+v", id, len(ls), ls)
		}
		for _, l := range ls {
			if l.Succeeded != uint64(i) || l.Retried != 7 || l.DonePerSec != 1.25 || len(l.LastError) > dispatcher.MaxLaneErrorBytes || !strings.HasSuffix(l.LastError, "…") {
				t.Fatalf("%s: figures %+v", id, l)
			}
		}
		if ls[0].LastError[:2] == ls[1].LastError[:2] {
			t.Fatalf("%s: both reports from the same replica: %q, %q", id, ls[0].LastError[:2], ls[1].LastError[:2])
		}
	}
}

func discardLogger(t *testing.T) *slog.Logger {
	if l := testLogger(t); l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// A page is written when its figures change (or it nears the end of the
// bucket's TTL), not every round: an idle fleet of tenants costs no writes.
func TestHeartbeatPagesWrittenOnChange(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	if err := dispatcher.Provision(t.Context(), js, names, dispatcher.StreamConfig{}, nil); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), names.LanesBucket())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	w := newPageWriter(t.Context(), js, kv, names.LanesBucket(), "r1", func() time.Time { return now }, discardLogger(t))
	if w.refresh != dispatcher.DefaultReplicasTTL/3 {
		t.Errorf("refresh %v, want a third of the bucket's TTL", w.refresh)
	}
	lastSeq := func() uint64 {
		s, err := js.Stream(t.Context(), "KV_"+names.LanesBucket())
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}

	reports := manyLanes(1000, "r1")
	pages := w.write(t.Context(), reports)
	if pages < 3 {
		t.Fatalf("%d pages for 1000 lanes with errors, want several", pages)
	}
	if got := lastSeq(); got != uint64(pages) {
		t.Fatalf("first round wrote %d pages, want all %d", got, pages)
	}

	now = now.Add(2 * time.Second)
	if n := w.write(t.Context(), reports); n != pages || lastSeq() != uint64(pages) {
		t.Errorf("unchanged figures: %d pages, %d writes in all; want %d pages and no new write", n, lastSeq(), pages)
	}

	reports[len(reports)-1].Succeeded++
	w.write(t.Context(), reports)
	if got := lastSeq(); got != uint64(pages)+1 {
		t.Errorf("one lane changed: %d writes in all, want %d (its page only)", got, pages+1)
	}

	now = now.Add(w.refresh)
	w.write(t.Context(), reports)
	if got := lastSeq(); got != 2*uint64(pages)+1 {
		t.Errorf("after the refresh period: %d writes in all, want every page again (%d)", got, 2*pages+1)
	}

	// Fewer lanes: fewer pages; the ones past the count are left to expire.
	if n := w.write(t.Context(), reports[:10]); n != 1 {
		t.Errorf("10 lanes in %d pages, want 1", n)
	}
}

func TestPackLanesBoundsPages(t *testing.T) {
	var lanes [][]byte
	for i := range 500 {
		lanes = append(lanes, []byte(strings.Repeat("x", 1+i*7%300)))
	}
	lanes = append(lanes, []byte(strings.Repeat("y", 5000))) // larger than a page
	const overhead, limit = 100, 2000
	pages := packLanes(lanes, overhead, limit)
	var got [][]byte
	for i, p := range pages {
		size := overhead + len(p) - 1
		for _, l := range p {
			size += len(l)
		}
		if size > limit && len(p) > 1 {
			t.Errorf("page %d: %d bytes with %d lanes, want at most %d", i, size, len(p), limit)
		}
		if len(p) == 0 {
			t.Errorf("page %d is empty", i)
		}
		got = append(got, p...)
	}
	if len(got) != len(lanes) {
		t.Fatalf("%d lanes in the pages, want %d", len(got), len(lanes))
	}
	for i := range got {
		if string(got[i]) != string(lanes[i]) {
			t.Fatalf("lane %d out of order", i)
		}
	}
	if last := pages[len(pages)-1]; len(last) != 1 || len(last[0]) != 5000 {
		t.Errorf("the oversized lane does not have a page to itself")
	}
}

func TestLaneError(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain error", "plain error"},
		{"  platform said:\r\n\t{\"a\": 1}\n\n", "platform said: {\"a\": 1}"},
		{"bell\x07 and nul\x00 here", "bell and nul here"},
		{"bad \xff utf-8", "bad \uFFFD utf-8"},
		{"line\u2028sep", "line sep"},
	} {
		if got := laneError(tc.in); got != tc.want {
			t.Errorf("laneError(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	exact := strings.Repeat("a", 512)
	if got := laneError(exact); got != exact {
		t.Errorf("an error of exactly the cap was cut: %d bytes", len(got))
	}
	for _, in := range []string{strings.Repeat("a", 513), strings.Repeat("é", 400), bigErrorBody, strings.Repeat("€x", 1000)} {
		got := laneError(in)
		if len(got) > 512 || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || len(got) < 500 {
			t.Errorf("laneError of %d bytes = %d bytes (valid %v): %q", len(in), len(got), utf8.ValidString(got), got)
		}
	}
}

func FuzzLaneError(f *testing.F) {
	for _, s := range []string{"", "plain", bigErrorBody, "a\x00b\xffc\u2028d", strings.Repeat(" \n", 3000) + "tail", strings.Repeat("€", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := laneError(in)
		if len(got) > dispatcher.MaxLaneErrorBytes || !utf8.ValidString(got) {
			t.Fatalf("laneError(%q) = %q: %d bytes, valid UTF-8 %v", in, got, len(got), utf8.ValidString(got))
		}
		for _, r := range got {
			if unicode.IsControl(r) || (unicode.IsSpace(r) && r != ' ') {
				t.Fatalf("laneError(%q) = %q keeps %U", in, got, r)
			}
		}
		if strings.HasPrefix(got, " ") || strings.Contains(got, "  ") {
			t.Fatalf("laneError(%q) = %q: leading or doubled spaces", in, got)
		}
		if utf8.ValidString(in) && len(in) <= dispatcher.MaxLaneErrorBytes && strings.HasSuffix(got, "…") && !strings.HasSuffix(in, "…") {
			t.Fatalf("laneError(%q) = %q: cut although it fits", in, got)
		}
	})
}

// A replica of an earlier version writes its lanes' figures into its
// heartbeat value: during a rolling upgrade it still counts as live, and
// readers still get its figures.
func TestHeartbeatCountsReplicaOfEarlierVersion(t *testing.T) {
	_, nc, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	if err := dispatcher.Provision(t.Context(), js, names, dispatcher.StreamConfig{}, nil); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), names.ReplicasBucket())
	if err != nil {
		t.Fatal(err)
	}
	old, err := json.Marshal(dispatcher.Heartbeat{Replica: "old-1", At: time.Now(), Lanes: manyLanes(500, "old-1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "old-1", old); err != nil {
		t.Fatal(err)
	}
	// The earlier version's heartbeat, written once, counts for 3 intervals:
	// time enough for this replica to announce its figures.
	p, err := New(Config{JS: js, Conn: nc, Names: names, ReplicaID: "new-1", Logger: testLogger(t), HeartbeatInterval: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.laneReports = func() []dispatcher.LaneReport { return manyLanes(500, "new-1") }
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	eventually(t, "the earlier version's replica counted, this one's figures announced", 5*time.Second, func() bool {
		e, err := kv.Get(t.Context(), "new-1")
		var hb dispatcher.Heartbeat
		return p.liveReplicas() == 2 && err == nil && json.Unmarshal(e.Value(), &hb) == nil && hb.Pages > 0
	})
	lanes, err := dispatcher.NewAdmin(js, names).Lanes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		if ls := lanes[fmt.Sprintf("org_%05d", i)]; len(ls) != 2 {
			t.Fatalf("org_%05d: figures of %d replicas, want 2 (the earlier version's and this one's)", i, len(ls))
		}
	}
}
