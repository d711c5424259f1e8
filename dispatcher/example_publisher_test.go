package dispatcher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natsserver"
	"github.com/orgdispatch/orgdispatch/tenants"
)

func ExamplePublisher() {
	ctx := context.Background()
	// An embedded JetStream server, reachable in-process only.
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

	names := dispatcher.MustNames("")
	orgs := []tenants.Tenant{{ID: "org_1", Concurrency: 4}}
	if err := dispatcher.Provision(ctx, js, names, dispatcher.StreamConfig{}, orgs); err != nil {
		panic(err)
	}

	pub := dispatcher.NewPublisher(js, names)
	job := dispatcher.Job{
		ID:     "c0a8-42-7",
		Tenant: "org_1",
		Op:     "campaign.start",
		Params: json.RawMessage(`{"campaign_id":"3fa85f64"}`),
	}
	for range 2 { // a retried publish: the job is queued once
		res, err := pub.Publish(ctx, job)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s/%s seq %d duplicate %v\n", res.Tenant, res.ID, res.Seq, res.Duplicate)
	}

	job.Params = json.RawMessage(`{}`)
	_, err = pub.Publish(ctx, job)
	fmt.Println(err)
	// Output:
	// org_1/c0a8-42-7 seq 1 duplicate false
	// org_1/c0a8-42-7 seq 1 duplicate true
	// invalid job: campaign.start params: campaign_id is required
}

func ExamplePublisher_PublishWithinDeadline() {
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
	names := dispatcher.MustNames("")
	// 60 requests a minute; no worker runs yet, so the estimate is at
	// this configured rate.
	orgs := []tenants.Tenant{{ID: "org_1", Concurrency: 4, RatePerMinute: 60}}
	if err := dispatcher.Provision(ctx, js, names, dispatcher.StreamConfig{}, orgs); err != nil {
		panic(err)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	pub := dispatcher.NewPublisher(js, names, dispatcher.WithPublisherClock(func() time.Time { return now }))
	for i := range 30 {
		job := dispatcher.Job{ID: fmt.Sprintf("bulk-%d", i), Tenant: "org_1", Op: "campaign.get",
			Params: json.RawMessage(`{"campaign_id":"3fa85f64"}`), Priority: "bulk"}
		if _, err := pub.Publish(ctx, job); err != nil {
			panic(err)
		}
	}

	deadline := now.Add(10 * time.Second)
	job := dispatcher.Job{ID: "report-1", Tenant: "org_1", Op: "campaign.get",
		Params: json.RawMessage(`{"campaign_id":"3fa85f64"}`), Priority: "bulk", Deadline: &deadline}
	_, err = pub.PublishWithinDeadline(ctx, job)
	var late *dispatcher.DeadlineUnreachableError
	if errors.As(err, &late) {
		fmt.Println("refused:", late.Estimate, "for", late.Ahead, "bulk jobs ahead")
	}
	// Urgent jobs get 7 of every 8 requests while bulk ones wait.
	job.ID, job.Priority = "stop-1", "urgent"
	if _, err := pub.PublishWithinDeadline(ctx, job); err == nil {
		fmt.Println("urgent job admitted")
	}
	// Output:
	// refused: 31s for 30 bulk jobs ahead
	// urgent job admitted
}
