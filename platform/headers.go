package platform

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Response headers the platform sets on API answers.
const (
	headerRetryAfter     = "Retry-After"
	headerLimitAllowed   = "Inin-Ratelimit-Allowed"
	headerLimitCount     = "Inin-Ratelimit-Count"
	headerLimitReset     = "Inin-Ratelimit-Reset"
	maxParsedRetryAfter  = 365 * 24 * time.Hour // a longer Retry-After is clamped to this
	maxRateLimitHeaderLn = 9                    // digits; longer values are ignored as garbage
)

// ParseRetryAfter reads a Retry-After header value: either a non-negative
// integer number of seconds or an HTTP date (RFC 9110: IMF-fixdate, RFC 850 or
// asctime), which is taken relative to now. It reports false for an empty,
// negative, fractional or otherwise malformed value. A date in the past yields
// 0; values beyond a year are clamped to a year (callers cap further).
func ParseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	v := strings.Trim(value, " \t")
	if v == "" {
		return 0, false
	}
	if allDigits(v) {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > uint64(maxParsedRetryAfter/time.Second) {
			return maxParsedRetryAfter, true // out of range: "a very long time"
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	switch {
	case d < 0:
		d = 0
	case d > maxParsedRetryAfter:
		d = maxParsedRetryAfter
	}
	return d, true
}

// ParseRateLimit reads the inin-ratelimit-allowed, inin-ratelimit-count and
// inin-ratelimit-reset headers (non-negative integers; reset in seconds). A
// header that is missing or malformed leaves its field zero; Present reports
// whether at least one of them was valid.
func ParseRateLimit(h http.Header) RateLimit {
	var rl RateLimit
	if n, ok := headerInt(h, headerLimitAllowed); ok {
		rl.Present, rl.Allowed = true, n
	}
	if n, ok := headerInt(h, headerLimitCount); ok {
		rl.Present, rl.Count = true, n
	}
	if n, ok := headerInt(h, headerLimitReset); ok {
		rl.Present, rl.Reset = true, time.Duration(n)*time.Second
	}
	return rl
}

// headerInt parses the first value of header name as a non-negative integer of
// at most maxRateLimitHeaderLn digits.
func headerInt(h http.Header, name string) (int, bool) {
	v := strings.Trim(h.Get(name), " \t")
	if v == "" || len(v) > maxRateLimitHeaderLn || !allDigits(v) {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false
	}
	return n, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
