package dispatcher_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natsserver"
	"github.com/orgdispatch/orgdispatch/tenants"
)

func ExampleSchedules() {
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
	if err := dispatcher.Provision(ctx, js, names, dispatcher.StreamConfig{}, []tenants.Tenant{{ID: "org_1", Concurrency: 4}}); err != nil {
		panic(err)
	}

	// A Friday noon, just before Chicago's clocks change.
	now := time.Date(2026, 3, 6, 18, 0, 0, 0, time.UTC)
	s := dispatcher.NewSchedules(js, names, dispatcher.WithScheduleClock(func() time.Time { return now }))
	sched, err := s.Add(ctx, "org_1", dispatcher.ScheduleSpec{
		Name: "weekday-start", Cron: "0 0 9 * * 1-5", TimeZone: "America/Chicago",
		Job: dispatcher.Job{ID: "start-cmp-1", Op: "campaign.start", Params: json.RawMessage(`{"campaign_id":"cmp-1"}`)},
	})
	if err != nil {
		panic(err)
	}
	for _, t := range sched.Next[:2] {
		fmt.Println(t.Format(time.RFC3339), t.UTC().Format(time.RFC3339))
	}
	fmt.Println(dispatcher.OccurrenceID(sched.Job.ID, sched.Next[0]))

	_, err = s.Add(ctx, "org_1", dispatcher.ScheduleSpec{Name: "bad", Cron: "0 9 * * 1-5", Job: sched.Job})
	fmt.Println(err)
	fmt.Println(s.Cancel(ctx, "org_1", "weekday-start"))
	// Output:
	// 2026-03-09T09:00:00-05:00 2026-03-09T14:00:00Z
	// 2026-03-10T09:00:00-05:00 2026-03-10T14:00:00Z
	// start-cmp-1.20260309T140000Z
	// invalid schedule: cron "0 9 * * 1-5": want 6 fields (second minute hour day-of-month month day-of-week) or @daily etc., got 5 fields
	// <nil>
}
