package dispatcher_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// shardIDs returns n tenant ids t<i> all in one shard, the first found.
func shardIDs(t *testing.T, n int, notIn ...int) []string {
	t.Helper()
	byShard := map[int][]string{}
	for i := range 10_000 {
		id := fmt.Sprintf("t%d", i)
		s := dispatcher.ShardOf(id)
		skip := false
		for _, o := range notIn {
			skip = skip || s == o
		}
		if skip {
			continue
		}
		if byShard[s] = append(byShard[s], id); len(byShard[s]) == n {
			return byShard[s]
		}
	}
	t.Fatalf("no %d ids in one shard", n)
	return nil
}

// layoutIDs returns a and b in one shard, c in another, and u1 (in a's
// shard) and u2 (in a shard of none of them), never provisioned.
func layoutIDs(t *testing.T) (a, b, c, u1, u2 string) {
	t.Helper()
	ab := shardIDs(t, 3)
	a, b, u1 = ab[0], ab[1], ab[2]
	c = shardIDs(t, 1, dispatcher.ShardOf(a))[0]
	u2 = shardIDs(t, 1, dispatcher.ShardOf(a), dispatcher.ShardOf(c))[0]
	return a, b, c, u1, u2
}

func tenant(id string, maxBacklog int) tenants.Tenant {
	return tenants.Tenant{ID: id, Concurrency: 4, MaxBacklog: maxBacklog}
}

// publishNoRetry publishes a job on tenant's subject as a raw NATS producer
// would, without the client's retries on "no responders".
func publishNoRetry(t *testing.T, js jetstream.JetStream, names dispatcher.Names, tenant, op, msgID string) (*jetstream.PubAck, error) {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"op":%q,"params":{"campaign_id":"c"}}`, msgID, op)
	return js.Publish(t.Context(), names.JobSubject(tenant, op), []byte(body), jetstream.WithMsgID(msgID), jetstream.WithRetryAttempts(0))
}

func pending(t *testing.T, js jetstream.JetStream, names dispatcher.Names, tenant string) uint64 {
	t.Helper()
	info := consumerInfo(t, js, names, tenant)
	return info.NumPending + uint64(info.NumAckPending)
}

// checkUnknown fails unless tenant's jobs are refused: by the Publisher with
// *UnknownTenantError, by JetStream (no stream listens) to a raw producer.
func checkUnknown(t *testing.T, js jetstream.JetStream, names dispatcher.Names, pub *dispatcher.Publisher, tenant string) {
	t.Helper()
	_, err := pub.Publish(t.Context(), startJob(tenant, "j-refused"))
	var unknown *dispatcher.UnknownTenantError
	if !errors.As(err, &unknown) || unknown.Tenant != tenant || !strings.Contains(err.Error(), "tenant "+tenant+" is not configured") {
		t.Errorf("Publish for %s = %v, want *UnknownTenantError naming it", tenant, err)
	}
	if _, err := publishNoRetry(t, js, names, tenant, "campaign.start", tenant+":raw"); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("raw publish for %s = %v, want %v", tenant, err, jetstream.ErrNoStreamResponse)
	}
}

// A job of a tenant that is not configured finds no stream: the Publisher
// says so, and a raw producer gets no answer from JetStream, whether or not
// the tenant's shard has a stream. A retired tenant is refused the same
// way, while its queued jobs stay for it, and it takes jobs again once
// provisioned again.
func TestUnknownTenantRefused(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	a, b, c, u1, u2 := layoutIDs(t)
	ts := []tenants.Tenant{tenant(a, 0), tenant(b, 0), tenant(c, 0)}
	provision(t, js, names, dispatcher.StreamConfig{}, ts)
	pub := dispatcher.NewPublisher(js, names)

	if _, err := js.Stream(t.Context(), names.JobsStream(u2)); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("%s's shard has a stream (%v): the test wants one without", u2, err)
	}
	checkUnknown(t, js, names, pub, u1) // its shard's stream exists
	checkUnknown(t, js, names, pub, u2) // its shard has none
	if n, err := dispatcher.QueuedJobs(t.Context(), js, names); err != nil || n != 0 {
		t.Fatalf("jobs of unknown tenants were queued: %d (%v)", n, err)
	}

	// b is retired with 3 jobs queued, one of them delivered.
	for i := range 3 {
		if _, err := pub.Publish(t.Context(), startJob(b, fmt.Sprintf("q%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	deliver(t, js, names, b, 1, 0)
	if err := dispatcher.RetireTenant(t.Context(), js, names, b); err != nil {
		t.Fatal(err)
	}
	checkUnknown(t, js, names, pub, b)
	if info := consumerInfo(t, js, names, b); info.NumPending != 2 || info.NumAckPending != 1 {
		t.Errorf("retired %s: pending %d, ack pending %d; want its 3 queued jobs kept (2, 1)", b, info.NumPending, info.NumAckPending)
	}
	// a, in the same stream, and c take jobs as before.
	for _, id := range []string{a, c} {
		if _, err := pub.Publish(t.Context(), startJob(id, "after-retire")); err != nil {
			t.Errorf("Publish for %s after %s retired: %v", id, b, err)
		}
	}
	if err := dispatcher.RetireTenant(t.Context(), js, names, b); err != nil {
		t.Errorf("retiring %s again: %v", b, err)
	}

	// Provisioning the tenants left changes nothing for b.
	provision(t, js, names, dispatcher.StreamConfig{}, []tenants.Tenant{tenant(a, 0), tenant(c, 0)})
	checkUnknown(t, js, names, pub, b)
	if got := pending(t, js, names, b); got != 3 {
		t.Errorf("retired %s after provisioning the others: %d jobs queued, want 3", b, got)
	}

	// b comes back: its jobs are delivered and it takes new ones.
	provision(t, js, names, dispatcher.StreamConfig{}, ts)
	if _, err := pub.Publish(t.Context(), startJob(b, "back")); err != nil {
		t.Errorf("Publish for %s provisioned again: %v", b, err)
	}
	if got := pending(t, js, names, b); got != 4 {
		t.Errorf("%s provisioned again: %d jobs queued, want 4", b, got)
	}
}

// A tenant flooding its backlog is refused at its max_backlog, exactly,
// while the tenant sharing its stream and one in another stream publish at
// the same time without a refusal.
func TestBacklogFloodIsolated(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	a, b, c, _, _ := layoutIDs(t)
	const limit = 50
	provision(t, js, names, dispatcher.StreamConfig{}, []tenants.Tenant{tenant(a, limit), tenant(b, 0), tenant(c, 0)})
	pub := dispatcher.NewPublisher(js, names)

	var (
		mu       sync.Mutex
		accepted = map[string]int{}
		refused  []error
		others   []error
	)
	var wg sync.WaitGroup
	// a: 10× its limit, from 8 producers at once.
	const floods = 8
	for w := range floods {
		wg.Go(func() {
			for i := w; i < 10*limit; i += floods {
				_, err := pub.Publish(t.Context(), startJob(a, fmt.Sprintf("flood%d", i)))
				mu.Lock()
				if err == nil {
					accepted[a]++
				} else {
					refused = append(refused, err)
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range []string{b, c} {
		wg.Go(func() {
			for i := range 100 {
				_, err := pub.Publish(t.Context(), startJob(id, fmt.Sprintf("j%d", i)))
				mu.Lock()
				if err == nil {
					accepted[id]++
				} else {
					others = append(others, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	if accepted[a] != limit || len(refused) != 10*limit-limit {
		t.Errorf("%s published %d jobs: %d accepted, %d refused; want %d accepted", a, 10*limit, accepted[a], len(refused), limit)
	}
	for i, err := range refused {
		var full *dispatcher.BacklogFullError
		if !errors.As(err, &full) || full.Tenant != a || full.Limit != limit || full.PerOp || full.Backlog < limit {
			t.Errorf("refusal %d: %v (%#v), want *BacklogFullError of %s, limit %d", i, err, full, a, limit)
			continue
		}
		if want := fmt.Sprintf("tenant %s's backlog is full: %d jobs queued, max_backlog %d", a, full.Backlog, limit); !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %d: %q lacks %q", i, err, want)
		}
	}
	if accepted[b] != 100 || accepted[c] != 100 || len(others) > 0 {
		t.Errorf("during %s's flood %s queued %d of 100, %s %d of 100; errors %v", a, b, accepted[b], c, accepted[c], others)
	}
	for id, want := range map[string]uint64{a: limit, b: 100, c: 100} {
		if got := pending(t, js, names, id); got != want {
			t.Errorf("%s has %d jobs queued, want %d", id, got, want)
		}
	}

	// Once a worker takes some, a is accepted again, up to its limit.
	deliver(t, js, names, a, 10, 10)
	for i := range 10 {
		if _, err := pub.Publish(t.Context(), startJob(a, fmt.Sprintf("later%d", i))); err != nil {
			t.Errorf("%s after 10 of its jobs ran, job %d: %v", a, i, err)
		}
	}
	var full *dispatcher.BacklogFullError
	if _, err := pub.Publish(t.Context(), startJob(a, "one-too-many")); !errors.As(err, &full) {
		t.Errorf("%s at its limit again: %v, want *BacklogFullError", a, err)
	}
}

// The server's own bound: a jobs stream takes at most MaxMsgsPerSubject
// (its tenants' largest max_backlog) jobs of one tenant and operation from
// a raw producer, and refuses the rest, while the other operations, the
// other tenant of the stream and tenants of other streams take jobs. The
// Publisher reports that refusal as a *BacklogFullError per operation.
func TestBacklogPerSubjectLimit(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	x, y, z, _, _ := layoutIDs(t)
	const limit = 20
	provision(t, js, names, dispatcher.StreamConfig{}, []tenants.Tenant{tenant(x, limit), tenant(y, limit), tenant(z, 0)})
	s, err := js.Stream(t.Context(), names.JobsStream(x))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxMsgsPerSubject; got != limit {
		t.Fatalf("%s's stream: MaxMsgsPerSubject %d, want %d", x, got, limit)
	}

	// The Publisher reads x's backlog once (empty) and, its clock standing
	// still, trusts that figure while it has published less than the limit.
	now := time.Now()
	pub := dispatcher.NewPublisher(js, names, dispatcher.WithPublisherClock(func() time.Time { return now }))
	if _, err := pub.Publish(t.Context(), startJob(x, "via-publisher")); err != nil {
		t.Fatal(err)
	}

	stored := 1
	for i := range 3 * limit {
		_, err := publishNoRetry(t, js, names, x, "campaign.start", fmt.Sprintf("%s:raw%d", x, i))
		if err == nil {
			stored++
			continue
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10077 || apiErr.Description != "maximum messages per subject exceeded" {
			t.Fatalf("raw job %d refused with %v (%#v), want the per-subject limit's APIError", i, err, apiErr)
		}
	}
	if stored != limit {
		t.Errorf("%s's subject holds %d jobs of campaign.start, want the limit %d", x, stored, limit)
	}
	for _, p := range []struct{ tenant, op string }{{x, "campaign.stop"}, {y, "campaign.start"}, {z, "campaign.start"}} {
		for i := range limit {
			if _, err := publishNoRetry(t, js, names, p.tenant, p.op, fmt.Sprintf("%s:%s%d", p.tenant, p.op, i)); err != nil {
				t.Fatalf("%s %s job %d while %s's campaign.start is full: %v", p.tenant, p.op, i, x, err)
			}
		}
	}

	_, err = pub.Publish(t.Context(), startJob(x, "over"))
	var full *dispatcher.BacklogFullError
	if !errors.As(err, &full) || !full.PerOp || full.Tenant != x || full.Limit != limit {
		t.Fatalf("Publish into the full subject = %v (%#v), want a *BacklogFullError per operation, limit %d", err, full, limit)
	}
	if want := fmt.Sprintf("tenant %s's backlog is full: %d jobs of this operation queued, its limit (max_backlog %d)", x, limit, limit); !strings.Contains(err.Error(), want) {
		t.Errorf("%q lacks %q", err, want)
	}
}

// Message ids are scoped by tenant: a producer setting another tenant's
// message id on its own subject does not make that tenant's job a silent
// duplicate; two tenants' jobs with the same id both queue.
func TestDedupIsTenantScoped(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	a, b, c, _, _ := layoutIDs(t)
	provision(t, js, names, dispatcher.StreamConfig{}, []tenants.Tenant{tenant(a, 0), tenant(b, 0), tenant(c, 0)})
	pub := dispatcher.NewPublisher(js, names)

	// A producer of a uses b's message id for job "x1".
	if _, err := publishNoRetry(t, js, names, a, "campaign.start", dispatcher.MsgID(b, "x1")); err != nil {
		t.Fatal(err)
	}
	res, err := pub.Publish(t.Context(), startJob(b, "x1"))
	var foreign *dispatcher.ForeignDuplicateError
	if !errors.As(err, &foreign) || foreign.Tenant != b || foreign.ID != "x1" || foreign.Subject != names.JobSubject(a, "campaign.start") {
		t.Fatalf("Publish of %s's x1 after %s's producer took its id = %+v, %v; want *ForeignDuplicateError naming %s's subject", b, a, res, err, a)
	}
	if !strings.Contains(err.Error(), "its message id is held by a message on "+names.JobSubject(a, "campaign.start")) {
		t.Errorf("error %q does not say where the id is held", err)
	}
	if got := pending(t, js, names, b); got != 0 {
		t.Errorf("%s has %d jobs queued after the refusal, want 0", b, got)
	}

	// The same id for tenants of one stream and of two streams: all queue;
	// a tenant's own repeat is a duplicate.
	for _, id := range []string{a, b, c} {
		res, err := pub.Publish(t.Context(), startJob(id, "same"))
		if err != nil || res.Duplicate {
			t.Errorf("Publish of %s's job \"same\" = %+v, %v; want it queued", id, res, err)
		}
	}
	if res, err := pub.Publish(t.Context(), startJob(b, "same")); err != nil || !res.Duplicate {
		t.Errorf("Publish of %s's \"same\" again = %+v, %v; want a duplicate", b, res, err)
	}
	for id, want := range map[string]uint64{a: 2, b: 1, c: 1} {
		if got := pending(t, js, names, id); got != want {
			t.Errorf("%s has %d jobs queued, want %d", id, got, want)
		}
	}
}

// Lowering a tenant's max_backlog below what it has queued, or provisioning
// a stream's remaining tenants after one was retired, loses no queued job:
// the Publisher refuses new ones until the backlog is under the limit.
func TestLowerBacklogKeepsQueuedJobs(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	a, b, c, _, _ := layoutIDs(t)
	provision(t, js, names, dispatcher.StreamConfig{}, []tenants.Tenant{tenant(a, 0), tenant(b, 0), tenant(c, 0)})
	pub := dispatcher.NewPublisher(js, names)
	for _, id := range []string{a, b, c} {
		for i := range 30 {
			if _, err := pub.Publish(t.Context(), startJob(id, fmt.Sprintf("j%d", i))); err != nil {
				t.Fatal(err)
			}
		}
	}

	// c, alone in its stream, is lowered to 10 (a restart with the new
	// tenants file, then a reload); b is retired and a lowered to 5.
	provision(t, js, names, dispatcher.StreamConfig{}, []tenants.Tenant{tenant(a, 0), tenant(b, 0), tenant(c, 10)})
	if _, err := dispatcher.EnsureConsumerWith(t.Context(), js, names, dispatcher.StreamConfig{}, tenant(c, 8)); err != nil {
		t.Fatal(err)
	}
	if err := dispatcher.RetireTenant(t.Context(), js, names, b); err != nil {
		t.Fatal(err)
	}
	provision(t, js, names, dispatcher.StreamConfig{}, []tenants.Tenant{tenant(a, 5), tenant(c, 8)})

	for _, id := range []string{a, b, c} {
		if got := pending(t, js, names, id); got != 30 {
			t.Errorf("%s has %d jobs queued after its stream's limit changed, want its 30", id, got)
		}
	}
	var full *dispatcher.BacklogFullError
	if _, err := dispatcher.NewPublisher(js, names).Publish(t.Context(), startJob(c, "over")); !errors.As(err, &full) || full.Limit != 8 {
		t.Errorf("Publish for %s over its lowered limit: %v, want *BacklogFullError with limit 8", c, err)
	}
}
