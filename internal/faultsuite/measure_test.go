package faultsuite

import (
	"testing"
	"time"
)

func TestStallAndRecovery(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(secs ...float64) []time.Time {
		var out []time.Time
		for _, s := range secs {
			out = append(out, t0.Add(time.Duration(s*float64(time.Second))))
		}
		return out
	}
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	for _, tc := range []struct {
		name      string
		times     []time.Time
		fault     float64
		end       float64
		wantStall float64
		wantAt    float64
		wantOpen  bool
		wantRec   float64
		wantOK    bool
	}{
		{"steady", at(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0), 0.45, 1.0, 0.1, 0.1, false, 0.05, true},
		{"stall across the fault", at(0.1, 0.2, 0.3, 3.3, 3.4, 3.5), 0.25, 3.5, 3.0, 0.3, false, 3.05, true},
		{"stall open at the end", at(0.1, 0.2, 0.3), 0.25, 5, 4.7, 0.3, true, 0, false},
		{"two stalls: recovery is the end of the last", at(0.1, 2.1, 2.2, 4.2, 4.3, 4.4, 4.5), 1, 4.5, 2.0, 0.1, false, 3.2, true},
		{"nothing at all", nil, 1, 5, 5, 0, true, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gap, gapAt, open := stall(tc.times, t0, sec(tc.end))
			if !near(gap.Seconds(), tc.wantStall) || open != tc.wantOpen || !near(gapAt.Sub(t0).Seconds(), tc.wantAt) {
				t.Errorf("stall = %v at %v open %v, want %vs at %vs open %v", gap, gapAt.Sub(t0), open, tc.wantStall, tc.wantAt, tc.wantOpen)
			}
			rec, ok := recovery(tc.times, sec(tc.fault), sec(tc.end))
			if ok != tc.wantOK || (ok && !near(rec.Seconds(), tc.wantRec)) {
				t.Errorf("recovery = %v %v, want %vs %v", rec, ok, tc.wantRec, tc.wantOK)
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-6 && b-a < 1e-6 }
