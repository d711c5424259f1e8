package condlog

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// lines is a slog handler's output split into lines.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSpace(l.buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func newTestLogger(interval time.Duration) (*Logger, *lines) {
	out := &lines{}
	h := slog.NewTextHandler(out, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	return New(Config{Logger: slog.New(h), Interval: interval}), out
}

// A condition that occurs 1,000 times in a burst and then clears writes two
// lines: the first occurrence, and the summing-up with the count and the
// first and last time.
func TestBurstIsOneLineAndASummary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, out := newTestLogger(time.Minute)
		start := time.Now()
		for i := range 1000 {
			l.Report(slog.LevelWarn, "org_1", "status write failed", "job_id", i)
			time.Sleep(10 * time.Millisecond) // fake time: 10 s in all
		}
		if !l.Active("org_1", "status write failed") {
			t.Fatal("condition not active after its occurrences")
		}
		got := out.all()
		if len(got) != 1 {
			t.Fatalf("during the burst: %d lines, want 1:\n%s", len(got), strings.Join(got, "\n"))
		}
		if !strings.Contains(got[0], `level=WARN msg="status write failed" tenant=org_1 job_id=0`) {
			t.Errorf("first line %q: want the first occurrence at WARN with its tenant and attributes", got[0])
		}
		l.Clear("org_1", "status write failed")
		got = out.all()
		if len(got) != 2 {
			t.Fatalf("after clearing: %d lines, want 2:\n%s", len(got), strings.Join(got, "\n"))
		}
		first := start.UTC().Format(time.RFC3339Nano)
		last := start.Add(999 * 10 * time.Millisecond).UTC().Format(time.RFC3339Nano)
		for _, want := range []string{`level=INFO`, `msg="status write failed (cleared)"`, "tenant=org_1", "count=1000", "suppressed=999", "first=" + first, "last=" + last, "job_id=999"} {
			if !strings.Contains(got[1], want) {
				t.Errorf("summary %q lacks %q", got[1], want)
			}
		}
		if l.Active("org_1", "status write failed") {
			t.Error("condition still active after Clear")
		}
		l.Clear("org_1", "status write failed") // nothing to clear: no line
		if n := len(out.all()); n != 2 {
			t.Errorf("clearing an inactive condition wrote a line (%d lines)", n)
		}
	})
}

// A condition that lasts is summed up once per interval, not per occurrence.
func TestLastingConditionIsSummedUpPerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, out := newTestLogger(time.Minute)
		for range 5 * 60 * 10 { // 5 minutes at 10 per second
			l.Report(slog.LevelWarn, "org_1", "pull failed")
			time.Sleep(100 * time.Millisecond)
		}
		got := out.all()
		// The first occurrence, then one line per minute: 1 + 4 (the fifth
		// minute's is due with the next occurrence, which does not come).
		if len(got) != 5 {
			t.Fatalf("%d lines over 5 minutes, want 5:\n%s", len(got), strings.Join(got, "\n"))
		}
		for _, line := range got[1:] {
			if !strings.Contains(line, `msg="pull failed (still occurring)"`) || !strings.Contains(line, "suppressed=600") {
				t.Errorf("periodic line %q: want a still-occurring summary of 600 suppressed occurrences", line)
			}
		}
		if !strings.Contains(got[4], "count=2401") {
			t.Errorf("fourth summary %q: want count=2401 (since the condition began)", got[4])
		}
	})
}

// Conditions are kept apart by tenant and by condition: one tenant's
// condition neither hides nor clears another's.
func TestConditionsAreKeyedByTenantAndCondition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, out := newTestLogger(time.Minute)
		l.Report(slog.LevelWarn, "org_1", "lane parked")
		l.Report(slog.LevelWarn, "org_2", "lane parked")
		l.Report(slog.LevelWarn, "org_1", "nak failed")
		l.Report(slog.LevelWarn, "org_1", "lane parked")
		if n := len(out.all()); n != 3 {
			t.Fatalf("%d lines, want 3 (one per tenant and condition):\n%s", n, strings.Join(out.all(), "\n"))
		}
		l.Clear("org_2", "lane parked")
		if !l.Active("org_1", "lane parked") || !l.Active("org_1", "nak failed") {
			t.Error("clearing org_2's condition cleared org_1's")
		}
		got := out.all()
		if len(got) != 4 || !strings.Contains(got[3], "tenant=org_2") || !strings.Contains(got[3], "count=1") {
			t.Errorf("want a 4th line clearing org_2's (count=1), got:\n%s", strings.Join(got, "\n"))
		}
	})
}
