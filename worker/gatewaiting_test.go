package worker

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// TestGateCountsRequestsWaitingOnTheLimiter: LaneReport.RateWaiting counts
// the requests held by the limiter, so that a lane bound by its rate is not
// taken for one bound by its concurrency.
func TestGateCountsRequestsWaitingOnTheLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(time.Now, rate.Limit(1), 1)
		if err := g.before(t.Context()); err != nil { // the burst's token
			t.Fatal(err)
		}
		if n := g.rateWaiting.Load(); n != 0 {
			t.Fatalf("%d waiting after a request that did not wait", n)
		}
		ctx, cancel := context.WithCancel(t.Context())
		errs := make(chan error, 2)
		for range 2 {
			go func() { errs <- g.before(ctx) }()
		}
		synctest.Wait()
		if n := g.rateWaiting.Load(); n != 2 {
			t.Errorf("%d waiting with two requests held by a 1/s limiter, want 2", n)
		}
		time.Sleep(time.Second) // fake time: the next token
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := g.rateWaiting.Load(); n != 1 {
			t.Errorf("%d waiting once one went, want 1", n)
		}
		cancel()
		<-errs
		if n := g.rateWaiting.Load(); n != 0 {
			t.Errorf("%d waiting once none is, want 0", n)
		}
	})
}
