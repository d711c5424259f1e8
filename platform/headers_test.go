package platform

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  time.Duration
		ok    bool
	}{
		{"seconds", "60", 60 * time.Second, true},
		{"zero", "0", 0, true},
		{"padded", " 7\t", 7 * time.Second, true},
		{"leading zeros", "007", 7 * time.Second, true},
		{"http date", testNow.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"rfc850 date", testNow.Add(30 * time.Second).Format(time.RFC850), 30 * time.Second, true},
		{"asctime date", testNow.Add(45 * time.Second).Format(time.ANSIC), 45 * time.Second, true},
		{"past date is now", testNow.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"huge seconds clamped", "99999999999999999999999", maxParsedRetryAfter, true},
		{"just over a year clamped", strconv.Itoa(int(maxParsedRetryAfter/time.Second) + 1), maxParsedRetryAfter, true},
		{"far date clamped", testNow.AddDate(5, 0, 0).Format(http.TimeFormat), maxParsedRetryAfter, true},
		{"empty", "", 0, false},
		{"blank", "  ", 0, false},
		{"negative", "-5", 0, false},
		{"plus sign", "+5", 0, false},
		{"fraction", "1.5", 0, false},
		{"unit", "5s", 0, false},
		{"garbage", "soon", 0, false},
		{"hex", "0x10", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseRetryAfter(tt.value, testNow)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"60", "0", "-1", "1.5", "", " 3 ", "99999999999999999999",
		testNow.Format(http.TimeFormat), testNow.Add(time.Hour).Format(time.RFC850),
		testNow.Format(time.ANSIC), "Wed, 21 Oct 2015 07:28:00 GMT", "garbage"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := ParseRetryAfter(v, testNow)
		if !ok {
			if d != 0 {
				t.Fatalf("ParseRetryAfter(%q) = %v, false: want 0 when not ok", v, d)
			}
			return
		}
		if d < 0 || d > maxParsedRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %v: out of [0, %v]", v, d, maxParsedRetryAfter)
		}
		if trimmed := strings.Trim(v, " \t"); allDigits(trimmed) {
			if n, err := strconv.ParseInt(trimmed, 10, 64); err == nil && n <= int64(maxParsedRetryAfter/time.Second) && d != time.Duration(n)*time.Second {
				t.Fatalf("ParseRetryAfter(%q) = %v, want %ds", v, d, n)
			}
		}
	})
}

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    RateLimit
	}{
		{"all", map[string]string{"inin-ratelimit-allowed": "300", "inin-ratelimit-count": "6", "inin-ratelimit-reset": "38"},
			RateLimit{Present: true, Allowed: 300, Count: 6, Reset: 38 * time.Second}},
		{"other example", map[string]string{"Inin-Ratelimit-Allowed": "180", "Inin-Ratelimit-Count": "1", "Inin-Ratelimit-Reset": "61"},
			RateLimit{Present: true, Allowed: 180, Count: 1, Reset: 61 * time.Second}},
		{"none", map[string]string{"Content-Type": "application/json"}, RateLimit{}},
		{"only reset", map[string]string{"inin-ratelimit-reset": "0"}, RateLimit{Present: true}},
		{"garbage ignored", map[string]string{"inin-ratelimit-allowed": "lots", "inin-ratelimit-count": "-1", "inin-ratelimit-reset": "1.5"}, RateLimit{}},
		{"one garbage one good", map[string]string{"inin-ratelimit-allowed": "x", "inin-ratelimit-count": " 12 "}, RateLimit{Present: true, Count: 12}},
		{"too long ignored", map[string]string{"inin-ratelimit-allowed": "1234567890"}, RateLimit{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			if got := ParseRateLimit(h); got != tt.want {
				t.Fatalf("ParseRateLimit = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseRateLimit(f *testing.F) {
	f.Add("300", "6", "38")
	f.Add("180", "1", "61")
	f.Add("", "", "")
	f.Add("-1", "abc", "999999999")
	f.Add("1e3", " 5", "0x1")
	f.Fuzz(func(t *testing.T, allowed, count, reset string) {
		h := http.Header{}
		h.Set(headerLimitAllowed, allowed)
		h.Set(headerLimitCount, count)
		h.Set(headerLimitReset, reset)
		rl := ParseRateLimit(h)
		if rl.Allowed < 0 || rl.Count < 0 || rl.Reset < 0 {
			t.Fatalf("negative field: %+v", rl)
		}
		if !rl.Present && rl != (RateLimit{}) {
			t.Fatalf("not Present but fields set: %+v", rl)
		}
		valid := func(v string) (int, bool) {
			v = strings.Trim(v, " \t")
			if v == "" || len(v) > maxRateLimitHeaderLn || !allDigits(v) {
				return 0, false
			}
			n, _ := strconv.Atoi(v)
			return n, true
		}
		a, okA := valid(allowed)
		c, okC := valid(count)
		r, okR := valid(reset)
		want := RateLimit{Present: okA || okC || okR, Allowed: a, Count: c, Reset: time.Duration(r) * time.Second}
		if rl != want {
			t.Fatalf("ParseRateLimit(%q, %q, %q) = %+v, want %+v", allowed, count, reset, rl, want)
		}
	})
}
