package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform"
)

// flood publishes jobs as fast as the server takes them: asynchronous
// JetStream publishes (at most maxPending unacknowledged), round-robin over
// the tenants, each job a campaign.get of its tenant's shared campaign in
// the envelope orgdispatch's Publisher writes, with the same subject and
// Nats-Msg-Id (the Publisher's queued status record is not written). It
// keeps at most maxBacklog jobs published but not completed, and stops at
// end. It returns the number of jobs published.
type flood struct {
	nc         *nats.Conn
	names      dispatcher.Names
	tenants    []string
	maxPending int
	maxBacklog int64
	completed  func() int64
	errs       atomic.Int64
}

func (f *flood) run(ctx context.Context, end time.Time) (int64, error) {
	js, err := jetstream.New(f.nc,
		jetstream.WithPublishAsyncMaxPending(f.maxPending),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { f.errs.Add(1) }))
	if err != nil {
		return 0, fmt.Errorf("bench: flood: %w", err)
	}
	params := make([][]byte, len(f.tenants))
	for i := range f.tenants {
		params[i] = jobParams(i, 0)
	}
	var published int64
	for i := 0; ctx.Err() == nil; i++ {
		if i%64 == 0 && !time.Now().Before(end) {
			break
		}
		for published-f.completed() >= f.maxBacklog {
			if ctx.Err() != nil || !time.Now().Before(end) {
				goto done
			}
			time.Sleep(200 * time.Microsecond) // backlog full: let the consumers catch up
		}
		t := i % len(f.tenants)
		tenant := f.tenants[t]
		id := "f" + strconv.FormatUint(jobCounter.Add(1), 36)
		data, err := json.Marshal(dispatcher.Job{ID: id, Tenant: tenant, Op: platform.OpCampaignGet, Params: params[t]})
		if err != nil {
			return published, fmt.Errorf("bench: flood: %w", err)
		}
		msg := nats.NewMsg(f.names.JobSubject(tenant, platform.OpCampaignGet))
		msg.Data = data
		msg.Header.Set(dispatcher.HeaderJobID, id)
		if err := publishAsync(ctx, js, msg, dispatcher.MsgID(tenant, id)); err != nil {
			return published, fmt.Errorf("bench: flood publish: %w", err)
		}
		published++
	}
done:
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		return published, fmt.Errorf("bench: flood: %d publishes unacknowledged after 10 s", js.PublishAsyncPending())
	case <-ctx.Done():
		return published, ctx.Err()
	}
	if n := f.errs.Load(); n > 0 {
		return published, fmt.Errorf("bench: flood: %d of %d publishes failed", n, published)
	}
	return published, nil
}

// publishAsync publishes msg asynchronously, waiting while the client has
// too many publishes unacknowledged.
func publishAsync(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, msgID string) error {
	for {
		_, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(msgID))
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
