package dispatcher_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// Next fire times in a zone with daylight saving, across both of 2026's
// changes in America/Chicago (Sunday 8 March, 02:00 CST → 03:00 CDT;
// Sunday 1 November, 02:00 CDT → 01:00 CST), on an injected "now": the
// local time stays put and the UTC time moves by the hour. A local time
// that does not exist that day is skipped, one that happens twice fires
// twice — as nats-server does (the same algorithm).
func TestCronNextAcrossDST(t *testing.T) {
	for _, tc := range []struct {
		name, expr, zone, from string
		want                   []string
	}{
		{"weekdays 09:00 into summer time", "0 0 9 * * 1-5", "America/Chicago", "2026-03-06T12:00:00Z",
			[]string{"2026-03-06T15:00:00Z", "2026-03-09T14:00:00Z", "2026-03-10T14:00:00Z"}},
		{"weekdays 09:00 out of summer time", "0 0 9 * * mon-fri", "America/Chicago", "2026-10-30T12:00:00Z",
			[]string{"2026-10-30T14:00:00Z", "2026-11-02T15:00:00Z", "2026-11-03T15:00:00Z"}},
		{"02:30 does not exist on 8 March", "0 30 2 * * *", "America/Chicago", "2026-03-07T00:00:00Z",
			[]string{"2026-03-07T08:30:00Z", "2026-03-09T07:30:00Z"}},
		{"01:30 happens twice on 1 November", "0 30 1 * * *", "America/Chicago", "2026-10-31T00:00:00Z",
			[]string{"2026-10-31T06:30:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"}},
		{"Berlin @daily", "@daily", "Europe/Berlin", "2026-03-28T12:00:00Z",
			[]string{"2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"}},
		{"UTC without a zone", "30 15 10 1 * *", "", "2026-12-02T00:00:00Z",
			[]string{"2027-01-01T10:15:30Z", "2027-02-01T10:15:30Z"}},
		{"either day field", "0 0 0 13 * fri", "", "2026-11-01T00:00:00Z",
			[]string{"2026-11-06T00:00:00Z", "2026-11-13T00:00:00Z", "2026-11-20T00:00:00Z"}},
		{"every 20 s", "*/20 * * * * *", "Asia/Kolkata", "2026-12-02T00:00:05Z",
			[]string{"2026-12-02T00:00:20Z", "2026-12-02T00:00:40Z", "2026-12-02T00:01:00Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dispatcher.ParseCron(tc.expr, tc.zone)
			if err != nil {
				t.Fatal(err)
			}
			got := c.NextN(utc(tc.from), len(tc.want))
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if !got[i].Equal(utc(tc.want[i])) {
					t.Errorf("fire %d: %s (%s), want %s", i, got[i].UTC().Format(time.RFC3339), got[i].Format(time.RFC3339), tc.want[i])
				}
				if tc.zone != "" && got[i].Location().String() != tc.zone {
					t.Errorf("fire %d in %s, want %s", i, got[i].Location(), tc.zone)
				}
				// Prev undoes Next: the occurrence before the next one.
				if i > 0 {
					if p, ok := c.Prev(got[i]); !ok || !p.Equal(got[i-1]) {
						t.Errorf("Prev(%s) = %s, %v; want %s", got[i].UTC().Format(time.RFC3339), p.UTC().Format(time.RFC3339), ok, tc.want[i-1])
					}
				}
			}
		})
	}
}

func TestParseCronRejects(t *testing.T) {
	for _, tc := range []struct{ expr, zone, want string }{
		{"0 9 * * 1-5", "", "want 6 fields"},
		{"0 0 9 * * 1-5", "Mars/Olympus", "unknown time zone"},
		{"0 0 9 * * 1-5", "Local", "unknown time zone"},
		{"0 60 9 * * *", "", "minute field"},
		{"0 0 24 * * *", "", "hour field"},
		{"0 0 9 0 * *", "", "day-of-month field"},
		{"0 0 9 * 13 *", "", "month field"},
		{"0 0 9 * * 7", "", "day-of-week field"},
		{"0 0 9 * * mon-", "", "day-of-week field"},
		{"x 0 9 * * *", "", "second field"},
		{"0 0 9/0 * * *", "", "hour field"},
		{"@every 5m", "", "want 6 fields"},
	} {
		_, err := dispatcher.ParseCron(tc.expr, tc.zone)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseCron(%q, %q) = %v, want an error with %q", tc.expr, tc.zone, err, tc.want)
		}
	}
}

func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"0 0 9 * * 1-5", "*/5 * * * * *", "@daily", "0 0 0 29 2 *", "1,2-5/2 * ? jan-dec sun-sat *", "0 0 0 31 2 *"} {
		f.Add(s)
	}
	from := utc("2026-12-02T00:00:00Z")
	f.Fuzz(func(t *testing.T, expr string) {
		c, err := dispatcher.ParseCron(expr, "America/Chicago")
		if err != nil {
			return
		}
		next, ok := c.Next(from)
		if ok && !next.After(from) {
			t.Fatalf("%q: Next(%s) = %s, not after", expr, from, next)
		}
	})
}

func TestScheduledJob(t *testing.T) {
	names := dispatcher.MustNames("")
	job := dispatcher.Job{ID: "start", Tenant: "org_1", Op: "campaign.start"}
	fired := func(scheduler, next, cron, zone string) nats.Header {
		h := nats.Header{}
		h.Set("Nats-Scheduler", scheduler)
		h.Set("Nats-Schedule-Next", next)
		if cron != "" {
			h.Set(dispatcher.HeaderScheduleCron, cron)
			h.Set(dispatcher.HeaderScheduleTimeZone, zone)
		}
		return h
	}
	for _, tc := range []struct {
		name    string
		h       nats.Header
		wantID  string
		wantErr string
	}{
		{"not fired", nats.Header{}, "start", ""},
		{"run_at fires once", fired("orgdispatch.schedules.org_1.s", "purge", "", ""), "start", ""},
		// Monday 09:00 CDT fired; the next is Tuesday's.
		{"cron occurrence", fired("orgdispatch.schedules.org_1.s", "2026-03-10T09:00:00-05:00", "0 0 9 * * 1-5", "America/Chicago"), "start.20260309T140000Z", ""},
		// Friday 09:00 CST fired; the next is Monday's, after the change.
		{"cron occurrence across DST", fired("orgdispatch.schedules.org_1.s", "2026-03-09T14:00:00Z", "0 0 9 * * 1-5", "America/Chicago"), "start.20260306T150000Z", ""},
		{"raw schedule without the cron header", fired("orgdispatch.schedules.org_1.s", "2026-03-09T14:00:00.5Z", "", ""), "start.20260309T140000Z", ""},
		{"another tenant's schedule", fired("orgdispatch.schedules.org_2.s", "purge", "", ""), "", "not a schedule of tenant org_1"},
		{"not a schedule subject", fired("orgdispatch.jobs.org_1.x", "purge", "", ""), "", "not a schedule of tenant org_1"},
		{"bad next", fired("orgdispatch.schedules.org_1.s", "tomorrow", "", ""), "", "not an RFC 3339 time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dispatcher.ScheduledJob(names, "org_1", job, tc.h)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tc.wantID {
				t.Errorf("id %q, want %q", got.ID, tc.wantID)
			}
			if err := got.Validate("org_1"); err != nil && !strings.Contains(err.Error(), "params") {
				t.Errorf("occurrence id %q invalid: %v", got.ID, err)
			}
		})
	}
}
