package dispatcher_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
)

func TestPauseResumeAndState(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	provision(t, js, names, dispatcher.StreamConfig{}, tenantList(4, 4))
	ctx := t.Context()

	until := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	if err := dispatcher.Pause(ctx, js, names, "org_1", until, "429 from platform, Retry-After 60s", "replica-1"); err != nil {
		t.Fatal(err)
	}
	info := consumerInfo(t, js, names, "org_1")
	if !info.Paused || info.Config.PauseUntil == nil || !info.Config.PauseUntil.Equal(until) {
		t.Errorf("consumer: paused %v until %v, want until %s", info.Paused, info.Config.PauseUntil, until)
	}
	got, rec, err := dispatcher.PauseState(ctx, js, names, "org_1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(until) || rec == nil || rec.Reason != "429 from platform, Retry-After 60s" || rec.By != "replica-1" || !rec.Until.Equal(until) || rec.Tenant != "org_1" {
		t.Errorf("PauseState: %s, %+v", got, rec)
	}
	// The other tenant is untouched.
	if got, rec, err := dispatcher.PauseState(ctx, js, names, "org_2"); err != nil || !got.IsZero() || rec != nil {
		t.Errorf("org_2: %s, %+v, %v", got, rec, err)
	}

	if err := dispatcher.Resume(ctx, js, names, "org_1"); err != nil {
		t.Fatal(err)
	}
	if info := consumerInfo(t, js, names, "org_1"); info.Paused {
		t.Error("consumer still paused after Resume")
	}
	if got, rec, err := dispatcher.PauseState(ctx, js, names, "org_1"); err != nil || !got.IsZero() || rec != nil {
		t.Errorf("after Resume: %s, %+v, %v", got, rec, err)
	}
	// Resuming a tenant that is not paused is fine.
	if err := dispatcher.Resume(ctx, js, names, "org_2"); err != nil {
		t.Errorf("Resume of an unpaused tenant: %v", err)
	}
}

// A record left by an earlier pause does not explain a pause set otherwise.
func TestPauseStateIgnoresStaleRecord(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	provision(t, js, names, dispatcher.StreamConfig{}, tenantList(1))
	ctx := t.Context()
	kv, err := js.KeyValue(ctx, names.PausesBucket())
	if err != nil {
		t.Fatal(err)
	}
	old, _ := json.Marshal(dispatcher.PauseRecord{Tenant: "org_1", Until: time.Now().Add(-time.Hour), Reason: "old", By: "api"})
	if _, err := kv.Put(ctx, "org_1", old); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Minute)
	if _, err := js.PauseConsumer(ctx, names.JobsStream("org_1"), names.Consumer("org_1"), until); err != nil {
		t.Fatal(err)
	}
	got, rec, err := dispatcher.PauseState(ctx, js, names, "org_1")
	if err != nil || got.Sub(until).Abs() > time.Millisecond || rec != nil {
		t.Errorf("PauseState: %s, %+v, %v; want %s without a record", got, rec, err, until)
	}
}

func TestPauseRejectsBadInput(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	provision(t, js, names, dispatcher.StreamConfig{}, tenantList(1))
	ctx := t.Context()
	for name, err := range map[string]error{
		"past deadline":  dispatcher.Pause(ctx, js, names, "org_1", time.Now().Add(-time.Second), "x", "api"),
		"bad tenant id":  dispatcher.Pause(ctx, js, names, "org 1", time.Now().Add(time.Minute), "x", "api"),
		"unknown tenant": dispatcher.Pause(ctx, js, names, "org_9", time.Now().Add(time.Minute), "x", "api"),
		"resume bad id":  dispatcher.Resume(ctx, js, names, "org.1"),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := dispatcher.Pause(ctx, js, names, "org_1", time.Now().Add(-time.Second), "x", "api"); !strings.Contains(err.Error(), "Resume") {
		t.Errorf("past deadline error %q does not point to Resume", err)
	}
	if info := consumerInfo(t, js, names, "org_1"); info.Paused {
		t.Error("a rejected Pause paused the consumer")
	}
}

// Two replicas answered 429 at nearly the same time must not shorten each
// other's pause: ExtendPause only ever moves the deadline later.
func TestExtendPauseNeverShortens(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	provision(t, js, names, dispatcher.StreamConfig{}, tenantList(1, 4))
	ctx := t.Context()

	later := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	ext, err := dispatcher.ExtendPause(ctx, js, names, "org_1", later, "429 from platform, Retry-After 60s", "replica-1")
	if err != nil || !ext {
		t.Fatalf("first ExtendPause: extended %v, err %v", ext, err)
	}
	sooner := later.Add(-30 * time.Second)
	ext, err = dispatcher.ExtendPause(ctx, js, names, "org_1", sooner, "429 from platform, Retry-After 30s", "replica-2")
	if err != nil || ext {
		t.Fatalf("shorter ExtendPause: extended %v, err %v; want not extended", ext, err)
	}
	if info := consumerInfo(t, js, names, "org_1"); info.Config.PauseUntil == nil || !info.Config.PauseUntil.Equal(later) {
		t.Errorf("pause until %v after a shorter ExtendPause, want %s", info.Config.PauseUntil, later)
	}
	if _, rec, err := dispatcher.PauseState(ctx, js, names, "org_1"); err != nil || rec == nil || rec.By != "replica-1" {
		t.Errorf("the first pause's reason must stay: %+v, %v", rec, err)
	}

	longest := later.Add(30 * time.Second)
	ext, err = dispatcher.ExtendPause(ctx, js, names, "org_1", longest, "429 from platform, Retry-After 90s", "replica-2")
	if err != nil || !ext {
		t.Fatalf("longer ExtendPause: extended %v, err %v", ext, err)
	}
	if info := consumerInfo(t, js, names, "org_1"); info.Config.PauseUntil == nil || !info.Config.PauseUntil.Equal(longest) {
		t.Errorf("pause until %v, want %s", info.Config.PauseUntil, longest)
	}
}
