package worker

import (
	"bytes"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// syncBuffer is a bytes.Buffer for a logger written from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Issue 9, part 6: while a tenant's status records cannot be written, the
// log says so once — not once per job — and sums it up (how many, first
// and last) when writes work again.
func TestStatusWriteFailuresAreLoggedOnce(t *testing.T) {
	const jobs = 30
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", nil)
	e.provision(ta)
	var logs syncBuffer
	hooks := newRecHooks()
	cfg := e.config("r1", hooks, ta)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	e.setStatusWritable(false)
	e.start(cfg)
	for i := range jobs {
		e.publish("a", getJob(fmt.Sprintf("j%d", i), "c1"))
	}
	hooks.waitFor(t, "every job to succeed", 20*time.Second, func(h *recHooks) bool { return h.finished["a"][OutcomeSucceeded] == jobs })

	e.setStatusWritable(true)
	e.publish("a", getJob("after", "c1"))
	e.waitStatus("a", "after", dispatcher.StateSucceeded, 10*time.Second)
	// The writer clears the condition after the round that wrote "after".
	eventually(t, "the summing-up line", 5*time.Second, func() bool {
		return strings.Contains(logs.String(), condStatusWrite+" (cleared)")
	})

	out := logs.String()
	if n := strings.Count(out, `level=WARN msg="`+condStatusWrite+`"`); n != 1 {
		t.Errorf("%d warnings for %d jobs' failed status writes, want 1:\n%s", n, jobs, out)
	}
	m := regexp.MustCompile(`msg="` + regexp.QuoteMeta(condStatusWrite) + ` \(cleared\)" replica=r1 tenant=a count=(\d+) suppressed=\d+ first=\S+ last=\S+`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summing-up with count, first and last:\n%s", out)
	}
	t.Logf("%d failed status writes of %d jobs summed up in one line", mustAtoi(t, m[1]), jobs)
	if mustAtoi(t, m[1]) < jobs {
		t.Errorf("summing-up counts %s failures, want ≥ %d (one per job at least)", m[1], jobs)
	}
	if lines := strings.Count(out, "\n"); lines > 20 {
		t.Errorf("%d log lines for %d jobs under one fault:\n%s", lines, jobs, out)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
