package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform"
)

// sharedPool is the isolation scenario's baseline: what teams build today.
// One JetStream work-queue stream with ONE durable pull consumer over every
// tenant's subjects (a single FIFO queue), and a fixed pool of workers that
// take jobs from it in order and call the platform, retrying a 429 in the
// worker:
//
//   - backoffOn429 (mode "shared"): each worker sleeps base·2^n (capped),
//     n counting that worker's consecutive 429s and reset on success — the
//     exponential backoff of the original report;
//   - otherwise (mode "per-org tokens, shared pool"): the worker sleeps the
//     answer's Retry-After and retries, as the vendor SDK's retry does.
//
// Either way a worker holding a throttled job is blocked, whatever the
// other tenants' queued jobs need.
type sharedPool struct {
	js      jetstream.JetStream
	names   dispatcher.Names
	workers int
	// client returns the platform client for a tenant id.
	client       func(tenant string) *platform.Client
	backoffOn429 bool
	backoffBase  time.Duration
	backoffMax   time.Duration

	limited  atomic.Int64 // 429 answers seen by the pool
	failures atomic.Int64 // other errors
}

// sharedStreamConfig is the single queue of the baseline: same subjects and
// retention as orgdispatch's jobs stream.
func sharedStreamConfig(names dispatcher.Names) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       names.LegacyJobsStream(),
		Subjects:   []string{names.JobsSubjects()},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Duplicates: 10 * time.Minute,
		Discard:    jetstream.DiscardNew,
	}
}

// provision creates the stream and the one consumer.
func (p *sharedPool) provision(ctx context.Context) (jetstream.Consumer, error) {
	st, err := p.js.CreateOrUpdateStream(ctx, sharedStreamConfig(p.names))
	if err != nil {
		return nil, fmt.Errorf("bench: baseline stream: %w", err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       "shared_pool",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       10 * time.Minute, // workers hold jobs while they sleep; no redelivery meanwhile
		MaxAckPending: 100_000,
		MaxDeliver:    -1,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: baseline consumer: %w", err)
	}
	return cons, nil
}

// run serves jobs until ctx is done.
func (p *sharedPool) run(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(p.workers))
	if err != nil {
		return fmt.Errorf("bench: baseline consume: %w", err)
	}
	jobs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the queue, in order, to whichever worker is free
		defer wg.Done()
		defer close(jobs)
		for {
			msg, err := it.Next()
			if err != nil {
				return
			}
			select {
			case jobs <- msg:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range p.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			consecutive := 0 // this worker's 429s in a row
			for msg := range jobs {
				p.handle(ctx, msg, &consecutive)
			}
		}()
	}
	<-ctx.Done()
	it.Stop()
	wg.Wait()
	return nil
}

func (p *sharedPool) handle(ctx context.Context, msg jetstream.Msg, consecutive *int) {
	tenant, _, err := p.names.ParseJobSubject(msg.Subject())
	if err != nil {
		_ = msg.Term()
		p.failures.Add(1)
		return
	}
	job, err := dispatcher.DecodeJob(msg.Data())
	if err != nil {
		_ = msg.Term()
		p.failures.Add(1)
		return
	}
	c := p.client(tenant)
	for ctx.Err() == nil {
		_, err := c.Do(ctx, job.Op, job.Params)
		if err == nil {
			*consecutive = 0
			_ = msg.Ack()
			return
		}
		var rl *platform.RateLimitError
		if !errors.As(err, &rl) {
			if ctx.Err() == nil {
				p.failures.Add(1)
				_ = msg.Nak()
			}
			return
		}
		p.limited.Add(1)
		wait := rl.RetryAfter
		if p.backoffOn429 {
			wait = min(p.backoffBase<<min(*consecutive, 30), p.backoffMax)
			*consecutive++
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}
