package dispatcher

// The cron syntax and the next-time search here are nats-server's own
// (server/cron.go of v2.15, itself based on github.com/robfig/cron, MIT
// licence, Copyright (C) 2012 Rob Figueiredo), ported so that the fire times
// orgdispatch shows are the ones the server fires at — including its
// behaviour at daylight-saving changes: a local time that does not exist
// that day (02:30 when clocks go from 02:00 to 03:00) is skipped, and one
// that happens twice (01:30 when clocks go back) fires twice.

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Cron is a recurring schedule: a 6-field cron expression
// (second minute hour day-of-month month day-of-week, e.g. "0 0 9 * * 1-5"
// for 09:00:00 on weekdays) or one of @yearly, @annually, @monthly,
// @weekly, @daily, @midnight, @hourly, read in a time zone. Fields take
// numbers, *, ?, ranges a-b, steps /n, lists a,b, and month (jan…dec) and
// day (sun…sat) names; when both day fields are restricted, either may
// match. It is what nats-server's message scheduler accepts for
// Nats-Schedule with Nats-Schedule-Time-Zone.
type Cron struct {
	expr string
	loc  *time.Location
	spec cronSpec
}

type cronSpec struct {
	second, minute, hour, dom, month, dow uint64
}

// ParseCron parses expr in the IANA time zone zone ("" is UTC).
func ParseCron(expr, zone string) (*Cron, error) {
	loc := time.UTC
	if zone != "" {
		l, err := time.LoadLocation(zone)
		// LoadLocation also takes "Local" and paths; nats-server loads the
		// zone by name the same way, but "Local" means the server's zone.
		if err != nil || zone == "Local" {
			return nil, fmt.Errorf("unknown time zone %q: want an IANA zone name such as America/Chicago", zone)
		}
		loc = l
	}
	spec, err := parseCronSpec(expr)
	if err != nil {
		return nil, fmt.Errorf("cron %q: %w", expr, err)
	}
	return &Cron{expr: expr, loc: loc, spec: spec}, nil
}

// String is the expression as given.
func (c *Cron) String() string { return c.expr }

// Location is the schedule's time zone.
func (c *Cron) Location() *time.Location { return c.loc }

// Next is the first fire time strictly after t (from the next whole
// second on), in the schedule's zone; ok is false when there is none
// within five years.
func (c *Cron) Next(t time.Time) (time.Time, bool) {
	next, err := c.spec.next(t, c.loc)
	return next, err == nil
}

// NextN is up to n fire times after t.
func (c *Cron) NextN(t time.Time, n int) []time.Time {
	var out []time.Time
	for range n {
		next, ok := c.Next(t)
		if !ok {
			break
		}
		out = append(out, next)
		t = next
	}
	return out
}

// Prev is the last fire time strictly before t; ok is false when there is
// none within five years. nats-server computes each next fire time from the
// one that fired, so Prev of a fired message's Nats-Schedule-Next is the
// occurrence that fired (or, when a server that was down skipped missed
// ones, the last one missed).
func (c *Cron) Prev(t time.Time) (time.Time, bool) {
	t = t.Truncate(time.Second)
	for w := time.Minute; w <= 6*366*24*time.Hour; w *= 2 {
		from := t.Add(-w)
		var last time.Time
		for {
			next, ok := c.Next(from)
			if !ok || !next.Before(t) {
				break
			}
			last, from = next, next
		}
		if !last.IsZero() {
			return last, true
		}
	}
	return time.Time{}, false
}

func parseCronSpec(pattern string) (cronSpec, error) {
	switch pattern {
	case "@yearly", "@annually":
		pattern = "0 0 0 1 1 *"
	case "@monthly":
		pattern = "0 0 0 1 * *"
	case "@weekly":
		pattern = "0 0 0 * * 0"
	case "@daily", "@midnight":
		pattern = "0 0 0 * * *"
	case "@hourly":
		pattern = "0 0 * * * *"
	}
	fields := strings.Fields(pattern)
	if len(fields) != 6 {
		return cronSpec{}, fmt.Errorf("want 6 fields (second minute hour day-of-month month day-of-week) or @daily etc., got %d fields", len(fields))
	}
	var s cronSpec
	var err error
	for i, f := range []struct {
		dst *uint64
		b   bounds
	}{{&s.second, seconds}, {&s.minute, minutes}, {&s.hour, hours}, {&s.dom, dom}, {&s.month, months}, {&s.dow, dow}} {
		if *f.dst, err = getField(fields[i], f.b); err != nil {
			return cronSpec{}, fmt.Errorf("%s field %q: %w", cronFieldNames[i], fields[i], err)
		}
	}
	return s, nil
}

var cronFieldNames = [6]string{"second", "minute", "hour", "day-of-month", "month", "day-of-week"}

// next is nats-server's parseCron after the parse: the first time after ts
// (from its next whole second) the spec matches in loc.
func (s cronSpec) next(ts time.Time, loc *time.Location) (time.Time, error) {
	next := ts.In(loc)
	next = next.Truncate(time.Second).Add(time.Second)
	truncated := false
	yearLimit := next.Year() + 5

WRAP:
	if next.Year() > yearLimit {
		return time.Time{}, errors.New("pattern exceeds maximum range")
	}
	for 1<<uint(next.Month())&s.month == 0 {
		if !truncated {
			truncated = true
			next = time.Date(next.Year(), next.Month(), 1, 0, 0, 0, 0, loc)
		}
		if next = next.AddDate(0, 1, 0); next.Month() == time.January {
			goto WRAP
		}
	}
	for !dayMatches(s.dom, s.dow, next) {
		if !truncated {
			truncated = true
			next = time.Date(next.Year(), next.Month(), next.Day(), 0, 0, 0, 0, loc)
		}
		if next = next.AddDate(0, 0, 1); next.Day() == 1 {
			goto WRAP
		}
	}
	for 1<<uint(next.Hour())&s.hour == 0 {
		if !truncated {
			truncated = true
			next = time.Date(next.Year(), next.Month(), next.Day(), next.Hour(), 0, 0, 0, loc)
		}
		if next = next.Add(time.Hour); next.Hour() == 0 {
			goto WRAP
		}
	}
	for 1<<uint(next.Minute())&s.minute == 0 {
		if !truncated {
			truncated = true
			next = next.Truncate(time.Minute)
		}
		if next = next.Add(time.Minute); next.Minute() == 0 {
			goto WRAP
		}
	}
	for 1<<uint(next.Second())&s.second == 0 {
		if !truncated {
			truncated = true
			next = next.Truncate(time.Second)
		}
		if next = next.Add(time.Second); next.Second() == 0 {
			goto WRAP
		}
	}
	return next, nil
}

// getField returns the bits of the times a comma-separated list of ranges
// names.
func getField(field string, r bounds) (uint64, error) {
	var bits uint64
	for expr := range strings.FieldsFuncSeq(field, func(r rune) bool { return r == ',' }) {
		bit, err := getRange(expr, r)
		if err != nil {
			return bits, err
		}
		bits |= bit
	}
	return bits, nil
}

// getRange returns the bits of number | number [ "-" number ] [ "/" number ].
func getRange(expr string, r bounds) (uint64, error) {
	var (
		start, end, step uint
		rangeAndStep     = strings.Split(expr, "/")
		lowAndHigh       = strings.Split(rangeAndStep[0], "-")
		singleDigit      = len(lowAndHigh) == 1
		err              error
	)
	var extra uint64
	if lowAndHigh[0] == "*" || lowAndHigh[0] == "?" {
		start, end, extra = r.min, r.max, starBit
	} else {
		if start, err = parseIntOrName(lowAndHigh[0], r.names); err != nil {
			return 0, err
		}
		switch len(lowAndHigh) {
		case 1:
			end = start
		case 2:
			if end, err = parseIntOrName(lowAndHigh[1], r.names); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("too many hyphens: %s", expr)
		}
	}
	switch len(rangeAndStep) {
	case 1:
		step = 1
	case 2:
		if step, err = mustParseInt(rangeAndStep[1]); err != nil {
			return 0, err
		}
		// "N/step" means "N-max/step".
		if singleDigit {
			end = r.max
		}
		if step > 1 {
			extra = 0
		}
	default:
		return 0, fmt.Errorf("too many slashes: %s", expr)
	}
	switch {
	case start < r.min:
		return 0, fmt.Errorf("beginning of range (%d) below minimum (%d): %s", start, r.min, expr)
	case end > r.max:
		return 0, fmt.Errorf("end of range (%d) above maximum (%d): %s", end, r.max, expr)
	case start > end:
		return 0, fmt.Errorf("beginning of range (%d) beyond end of range (%d): %s", start, end, expr)
	case step == 0:
		return 0, fmt.Errorf("step of range should be a positive number: %s", expr)
	}
	return getBits(start, end, step) | extra, nil
}

func parseIntOrName(expr string, names map[string]uint) (uint, error) {
	if n, ok := names[strings.ToLower(expr)]; ok {
		return n, nil
	}
	return mustParseInt(expr)
}

func mustParseInt(expr string) (uint, error) {
	num, err := strconv.Atoi(expr)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", expr)
	}
	if num < 0 {
		return 0, fmt.Errorf("negative number (%d) not allowed: %s", num, expr)
	}
	return uint(num), nil
}

func getBits(lo, hi, step uint) uint64 {
	if step == 1 {
		return ^(math.MaxUint64 << (hi + 1)) & (math.MaxUint64 << lo)
	}
	var bits uint64
	for i := lo; i <= hi; i += step {
		bits |= 1 << i
	}
	return bits
}

type bounds struct {
	min, max uint
	names    map[string]uint
}

var (
	seconds = bounds{0, 59, nil}
	minutes = bounds{0, 59, nil}
	hours   = bounds{0, 23, nil}
	dom     = bounds{1, 31, nil}
	months  = bounds{1, 12, map[string]uint{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	}}
	dow = bounds{0, 6, map[string]uint{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	}}
)

// starBit is set when a field had a *.
const starBit = 1 << 63

func dayMatches(dayOfMonth, dayOfWeek uint64, t time.Time) bool {
	domMatch := 1<<uint(t.Day())&dayOfMonth > 0
	dowMatch := 1<<uint(t.Weekday())&dayOfWeek > 0
	if dayOfMonth&starBit > 0 || dayOfWeek&starBit > 0 {
		return domMatch && dowMatch
	}
	return domMatch || dowMatch
}
