package dispatcher_test

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// envDSTChild, in a child test process, is the Unix time of the custom
// zone's transition; ZONEINFO points at the zip holding the zone.
const envDSTChild = "ORGDISPATCH_TEST_DST_AT"

// dstZone is the custom zone: its clocks spring forward by an hour a few
// seconds from now, from HH:00:00 standard time to HH+1:00:00 summer time,
// as America/Chicago's do at 02:00 on the second Sunday of March.
const dstZone = "Test/Spring"

// tzif is a version 1 TZif file of a zone with one transition, at at, from
// offset before (standard) to offset after (daylight).
func tzif(at time.Time, before, after int32) []byte {
	var b bytes.Buffer
	b.WriteString("TZif")
	b.Write(make([]byte, 16)) // version 1 (0), reserved
	abbr := []byte("TST\x00TDT\x00")
	for _, n := range []uint32{0, 0, 0, 1, 2, uint32(len(abbr))} { // isut, isstd, leap, time, type, char counts
		_ = binary.Write(&b, binary.BigEndian, n)
	}
	_ = binary.Write(&b, binary.BigEndian, int32(at.Unix()))
	b.WriteByte(1) // the transition's type: daylight
	for _, tt := range []struct {
		off   int32
		dst   byte
		abbri byte
	}{{before, 0, 0}, {after, 1, 4}} {
		_ = binary.Write(&b, binary.BigEndian, tt.off)
		b.WriteByte(tt.dst)
		b.WriteByte(tt.abbri)
	}
	b.Write(abbr)
	return b.Bytes()
}

// nats-server itself crosses a daylight-saving change: the test runs again
// in a child process whose ZONEINFO holds a zone springing forward seconds
// from now, on a whole local hour (X:00 standard becomes X+1:00 summer
// time). A cron firing every second of local hour X+1 does not fire before
// the change (local time is X-1:59 until then), fires first at the very
// second of the change, as orgdispatch's preview says, and every second
// after.
func TestServerCronCrossesDST(t *testing.T) {
	if at := os.Getenv(envDSTChild); at != "" {
		serverCronCrossesDST(t, at)
		return
	}
	// The next whole minute at least 6 s away: the standard offset (whole
	// minutes, as every zone's today) then puts the change on a whole
	// local hour. (nats-server writes Nats-Schedule-Next in the zone's
	// offset as RFC 3339, which has no seconds: an offset with seconds,
	// as zones had before 1900, would be misread.)
	at := time.Now().Add(6 * time.Second).Truncate(time.Minute).Add(time.Minute)
	before := -int32(at.Unix() % 3600)
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: dstZone, Method: zip.Store}) // Go reads stored zips only
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(tzif(at, before, before+3600)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zipPath := filepath.Join(t.TempDir(), "zoneinfo.zip")
	if err := os.WriteFile(zipPath, zb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestServerCronCrossesDST$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "ZONEINFO="+zipPath, envDSTChild+"="+strconv.FormatInt(at.Unix(), 10))
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child test: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestServerCronCrossesDST")) {
		t.Fatal("the child test did not pass")
	}
}

func serverCronCrossesDST(t *testing.T, atUnix string) {
	sec, err := strconv.ParseInt(atUnix, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(sec, 0)
	loc, err := time.LoadLocation(dstZone)
	if err != nil {
		t.Fatalf("the custom zone: %v (ZONEINFO %s)", err, os.Getenv("ZONEINFO"))
	}
	pre, post := at.Add(-time.Second).In(loc), at.In(loc)
	t.Logf("clocks go from %s to %s", pre.Format("15:04:05 MST"), post.Format("15:04:05 MST"))
	if pre.Minute() != 59 || pre.Second() != 59 || post.Minute() != 0 || post.Second() != 0 || post.Hour() != (pre.Hour()+2)%24 || !post.IsDST() {
		t.Fatalf("the custom zone does not spring forward at %s: %s then %s", at, pre, post)
	}
	if time.Until(at) < time.Second {
		t.Fatalf("the child started too late: the change is in %s", time.Until(at))
	}
	e := newAdminEnv(t, "org_1")
	expr := "* * " + strconv.Itoa(post.Hour()) + " * * *"
	c, err := dispatcher.ParseCron(expr, dstZone)
	if err != nil {
		t.Fatal(err)
	}
	preview, _ := c.Next(time.Now())
	if !preview.Equal(at) {
		t.Fatalf("preview: %s first fires at %s, want the change at %s", expr, preview, post)
	}
	s := dispatcher.NewSchedules(e.js, e.names)
	if _, err := s.Add(t.Context(), "org_1", dispatcher.ScheduleSpec{Name: "spring", Cron: expr, TimeZone: dstZone, Job: schedGetJob("spring")}); err != nil {
		t.Fatal(err)
	}
	cons, err := e.js.Consumer(t.Context(), e.names.JobsStream("org_1"), e.names.Consumer("org_1"))
	if err != nil {
		t.Fatal(err)
	}
	var occ []time.Time
	for len(occ) < 3 {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Until(at)+10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			if md.Timestamp.Before(at) {
				t.Errorf("fired at %s, before the change at %s", md.Timestamp, at)
			}
			next, err := time.Parse(time.RFC3339Nano, m.Headers().Get("Nats-Schedule-Next"))
			if err != nil {
				t.Fatal(err)
			}
			p, _ := c.Prev(next)
			occ = append(occ, p)
			t.Logf("fired at %s, next %s (%s)", md.Timestamp.In(loc).Format("15:04:05.000 MST"), m.Headers().Get("Nats-Schedule-Next"), next.In(loc).Format("15:04:05 MST"))
			_ = m.Ack()
		}
		if got == 0 {
			t.Fatalf("no fire within 10 s of the change at %s", at)
		}
	}
	if !occ[0].Equal(at) {
		t.Errorf("first occurrence %s, want the change at %s", occ[0].In(loc), post)
	}
	for i := 1; i < len(occ); i++ {
		if occ[i].Sub(occ[i-1]) != time.Second {
			t.Errorf("occurrences %s then %s, want a second apart", occ[i-1], occ[i])
		}
	}
	if err := s.Cancel(t.Context(), "org_1", "spring"); err != nil {
		t.Fatal(err)
	}
}
