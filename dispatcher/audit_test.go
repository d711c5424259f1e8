package dispatcher_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
)

// TestAuditRecordsSurviveRestartAndAreBounded: records written through an
// Auditor are read back (latest first, or paged oldest first, per tenant),
// survive a nats-server restart on the same store, and the stream keeps no
// more than AuditMaxMsgs of them (the oldest go).
func TestAuditRecordsSurviveRestartAndAreBounded(t *testing.T) {
	dir := t.TempDir()
	names := dispatcher.MustNames("")
	cfg := dispatcher.StreamConfig{AuditMaxMsgs: 20}
	srv, js := startAt(t, dir)
	provision(t, js, names, cfg, tenantList(2))
	aud := dispatcher.NewAuditor(js, names)
	for i := range 30 {
		tenant := []string{"org_1", "org_2", ""}[i%3]
		rec := dispatcher.AuditRecord{Actor: "ops", Action: dispatcher.AuditPause, Tenant: tenant, Reason: fmt.Sprintf("r%d", i)}
		if err := aud.Record(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	srv.Shutdown()

	_, js = startAt(t, dir)
	provision(t, js, names, cfg, tenantList(2)) // as every start does: idempotent
	admin := dispatcher.NewAdmin(js, names)
	all, err := admin.Audit(t.Context(), "", 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 20 {
		t.Fatalf("after a restart the audit stream holds %d records, want the 20 of AuditMaxMsgs", len(all))
	}
	if all[0].Reason != "r29" || all[19].Reason != "r10" {
		t.Errorf("latest first: got %s … %s, want r29 … r10", all[0].Reason, all[19].Reason)
	}
	if all[0].Actor != "ops" || all[0].Action != "pause" || all[0].Time.IsZero() || all[0].Seq == 0 {
		t.Errorf("record = %+v", all[0])
	}
	latest, err := admin.Audit(t.Context(), "org_1", 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := reasons(latest); got != "r27,r24,r21" {
		t.Errorf("latest 3 of org_1: %s", got)
	}
	page, err := admin.Audit(t.Context(), "org_2", 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := reasons(page); got != "r10,r13" {
		t.Errorf("org_2 oldest first after 1: %s", got)
	}
	next, err := admin.Audit(t.Context(), "org_2", 2, page[1].Seq)
	if err != nil {
		t.Fatal(err)
	}
	if got := reasons(next); got != "r16,r19" {
		t.Errorf("org_2 next page: %s", got)
	}
	info, err := js.Stream(t.Context(), names.AuditStream())
	if err != nil {
		t.Fatal(err)
	}
	c := info.CachedInfo().Config
	if c.MaxMsgs != 20 || c.MaxAge != dispatcher.DefaultAuditMaxAge || c.MaxBytes != dispatcher.DefaultAuditMaxBytes || c.Discard.String() != "DiscardOld" {
		t.Errorf("audit stream limits: msgs %d age %s bytes %d discard %s", c.MaxMsgs, c.MaxAge, c.MaxBytes, c.Discard)
	}
}

func reasons(recs []dispatcher.AuditRecord) string {
	var s []string
	for _, r := range recs {
		s = append(s, r.Reason)
	}
	return strings.Join(s, ",")
}

// TestProvisionAddsAuditStream: a deployment provisioned before the audit
// stream existed gains it on its next start.
func TestProvisionAddsAuditStream(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	provision(t, js, names, dispatcher.StreamConfig{}, tenantList(1))
	if err := js.DeleteStream(t.Context(), names.AuditStream()); err != nil {
		t.Fatal(err)
	}
	provision(t, js, names, dispatcher.StreamConfig{}, tenantList(1))
	if _, err := js.Stream(t.Context(), names.AuditStream()); err != nil {
		t.Fatalf("audit stream after provisioning again: %v", err)
	}
}

func TestAuditRecordValidation(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	provision(t, js, names, dispatcher.StreamConfig{}, nil)
	aud := dispatcher.NewAuditor(js, names)
	if err := aud.Record(t.Context(), dispatcher.AuditRecord{Action: "bad.action"}); err == nil {
		t.Error("an action with a dot was recorded")
	}
	long := strings.Repeat("é", 1000) + "\xff"
	rec := dispatcher.AuditRecord{Actor: "x", Action: dispatcher.AuditRefused, Tenant: "not a tenant!", Reason: long, Time: time.Unix(1, 0)}
	if err := aud.Record(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	got, err := dispatcher.NewAdmin(js, names).Audit(t.Context(), "", 1, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("Audit: %v %v", got, err)
	}
	if r := got[0]; r.Tenant != "" || r.Detail["tenant_requested"] != "not a tenant!" || len(r.Reason) > dispatcher.MaxAuditReason || !r.Time.Equal(time.Unix(1, 0)) {
		t.Errorf("record = %+v", r)
	}
}
