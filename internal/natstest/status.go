package natstest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// WaitJobState watches the status bucket until tenant's job id is in state
// and returns its record. On timeout (or ctx's end) it returns the last
// record seen and an error saying so; callers fail the test with it.
func WaitJobState(ctx context.Context, js jetstream.JetStream, names dispatcher.Names, tenant, id, state string, timeout time.Duration) (dispatcher.JobStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last dispatcher.JobStatus
	kv, err := js.KeyValue(ctx, names.StatusBucket())
	if err != nil {
		return last, fmt.Errorf("status bucket: %w", err)
	}
	w, err := kv.Watch(ctx, dispatcher.StatusKey(tenant, id))
	if err != nil {
		return last, fmt.Errorf("watch job %s/%s: %w", tenant, id, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case entry := <-w.Updates():
			if entry == nil || entry.Operation() != jetstream.KeyValuePut {
				continue
			}
			if err := json.Unmarshal(entry.Value(), &last); err != nil {
				return last, fmt.Errorf("job %s/%s: decode status: %w", tenant, id, err)
			}
			if last.State == state {
				return last, nil
			}
		case <-ctx.Done():
			return last, fmt.Errorf("job %s/%s not %s after %s; last status %+v", tenant, id, state, timeout, last)
		}
	}
}
