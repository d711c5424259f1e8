package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natsserver"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
	"github.com/orgdispatch/orgdispatch/worker"
)

// finished reports each job's outcome on a channel.
type finished struct {
	worker.NopHooks
	c chan string
}

func (f finished) JobFinished(tenant, op, outcome string, elapsed time.Duration) {
	f.c <- tenant + " " + op + " " + outcome
}

// A worker replica running one tenant's lane against the platform
// simulator: a job is published, started on the platform, and acknowledged.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "orgdispatch-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	srv, err := natsserver.Start(natsserver.Config{StoreDir: dir})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		panic(err)
	}

	sim := httptest.NewServer(platformtest.New(platformtest.Config{
		Clients:   []platformtest.ClientCred{{ID: "client_org1", Secret: "secret1", Org: "org_1"}},
		Campaigns: map[string][]platformtest.Campaign{"org_1": {{ID: "c1", Name: "Spring sale"}}},
	}))
	defer sim.Close()

	org := tenants.Tenant{
		ID: "org_1", ClientID: "client_org1", ClientSecret: tenants.NewSecret("secret1"),
		APIBase: sim.URL, TokenURL: sim.URL + "/oauth/token",
		RatePerMinute: 300, Burst: 1, Concurrency: 4, MaxAttempts: 10, QuotaScope: tenants.ScopeOrg,
	}
	names := dispatcher.MustNames("")
	if err := dispatcher.Provision(ctx, js, names, dispatcher.StreamConfig{}, []tenants.Tenant{org}); err != nil {
		panic(err)
	}

	hooks := finished{c: make(chan string, 1)}
	pool, err := worker.New(worker.Config{
		JS: js, Conn: nc, Names: names, Tenants: []tenants.Tenant{org},
		ReplicaID: "replica-1", Hooks: hooks,
	})
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- pool.Run(runCtx) }()

	job := dispatcher.Job{ID: "start-c1", Tenant: "org_1", Op: "campaign.start", Params: json.RawMessage(`{"campaign_id":"c1"}`)}
	if _, err := dispatcher.NewPublisher(js, names).Publish(ctx, job); err != nil {
		panic(err)
	}
	fmt.Println(<-hooks.c)

	stop() // stop pulling, finish what is in flight, hand back the rest
	if err := <-done; err != nil {
		panic(err)
	}
	fmt.Println(pool.Lanes()[0].Succeeded, "succeeded")
	// Output:
	// org_1 campaign.start succeeded
	// 1 succeeded
}
