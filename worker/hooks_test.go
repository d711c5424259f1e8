package worker

import (
	"slices"
	"testing"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// tenantsHooks records what the pool says its tenants are.
type tenantsHooks struct {
	NopHooks
	calls [][]string
}

func (h *tenantsHooks) TenantsChanged(ids []string) { h.calls = append(h.calls, ids) }

func TestHooksToldTheTenants(t *testing.T) {
	_, nc, js := natstest.RunServer(t)
	tenant := func(id string) tenants.Tenant {
		return tenants.Tenant{ID: id, ClientID: "c", ClientSecret: tenants.NewSecret("s"), APIBase: "http://127.0.0.1:1", TokenURL: "http://127.0.0.1:1/token",
			RatePerMinute: 60, Concurrency: 1, MaxAttempts: 1}
	}
	h := &tenantsHooks{}
	p, err := New(Config{JS: js, Conn: nc, Names: dispatcher.MustNames(""), ReplicaID: "r1", Hooks: h, Tenants: []tenants.Tenant{tenant("org_b"), tenant("org_a")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Update(t.Context(), []tenants.Tenant{tenant("org_c"), tenant("org_a")}); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"org_a", "org_b"}, {"org_a", "org_c"}}
	if !slices.EqualFunc(h.calls, want, slices.Equal) {
		t.Errorf("TenantsChanged calls %v, want %v", h.calls, want)
	}
}
