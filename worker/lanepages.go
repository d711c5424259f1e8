package worker

import (
	"context"
	"encoding/json"
	"hash/maphash"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/condlog"
)

// defaultPageRefresh is how often a page whose figures have not changed is
// rewritten when the lanes bucket has no TTL to keep ahead of.
const defaultPageRefresh = 10 * time.Second

// pageWriter publishes a replica's lane figures to the lanes bucket in pages
// of at most dispatcher.MaxLanePageBytes (dispatcher.LanePage), so that no
// value grows with the number of tenants. Each round packs the lanes in
// tenant order, and writes only the pages whose figures changed since they
// were last written, or that are older than refresh (a third of the bucket's
// TTL, so a page outlives nothing it should not and expires with nothing it
// should keep). The writes of one round go out together (PublishAsync to the
// page's $KV subject) and cost one round trip.
//
// Pages numbered past the current count are not rewritten: readers ignore
// them (the heartbeat says how many pages count), and the bucket's TTL
// removes them.
type pageWriter struct {
	js      jetstream.JetStream
	prefix  string // "$KV.<bucket>."
	replica string
	refresh time.Duration
	now     func() time.Time
	log     *slog.Logger
	cond    *condlog.Logger // when set, write failures are one condition, not a line each

	seed    maphash.Seed
	written []pageMark         // by page number: what was last written and when
	fails   int                // failures in the current round
	encoded map[string]encoded // by tenant: the last round's figures
}

// condLanePages is the condlog condition of lane pages that cannot be
// written.
const condLanePages = "write lane pages failed"

// failed reports a page that could not be written.
func (w *pageWriter) failed(attrs ...any) {
	w.fails++
	if w.cond != nil {
		w.cond.Report(slog.LevelWarn, "", condLanePages, attrs...)
		return
	}
	w.log.Warn(condLanePages, attrs...)
}

// encoded is a lane's figures and their encoding, reused while they do not
// change: idle tenants cost no encoding.
type encoded struct {
	report dispatcher.LaneReport
	data   []byte
}

// pageMark is what a page held when it was last written.
type pageMark struct {
	sum uint64
	at  time.Time
}

// rawLanePage is a dispatcher.LanePage whose lanes are already encoded.
type rawLanePage struct {
	Replica string            `json:"replica"`
	Page    int               `json:"page"`
	At      time.Time         `json:"at"`
	Lanes   []json.RawMessage `json:"lanes"`
}

func newPageWriter(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, bucket, replica string, now func() time.Time, log *slog.Logger) *pageWriter {
	refresh := defaultPageRefresh
	if st, err := kv.Status(ctx); err == nil && st.TTL() > 0 {
		refresh = min(refresh, st.TTL()/3)
	}
	return &pageWriter{
		js: js, prefix: "$KV." + bucket + ".", replica: replica, refresh: refresh,
		now: now, log: log, seed: maphash.MakeSeed(),
	}
}

// write publishes reports (sorted by tenant) and returns how many pages
// hold them now. A page that could not be written is logged and written
// again next round.
func (w *pageWriter) write(ctx context.Context, reports []dispatcher.LaneReport) int {
	w.fails = 0
	lanes := make([][]byte, 0, len(reports))
	next := make(map[string]encoded, len(reports))
	for _, r := range reports {
		e, ok := w.encoded[r.Tenant]
		if !ok || e.report != r {
			data, err := json.Marshal(r)
			if err != nil {
				w.log.Error("encode lane figures", "tenant", r.Tenant, "error", err)
				continue
			}
			e = encoded{r, data}
		}
		next[r.Tenant] = e
		lanes = append(lanes, e.data)
	}
	w.encoded = next
	packed := packLanes(lanes, pageOverhead(w.replica), dispatcher.MaxLanePageBytes)
	now := w.now()
	type sent struct {
		page int
		mark pageMark
		f    jetstream.PubAckFuture
	}
	var futures []sent
	for i, page := range packed {
		var h maphash.Hash
		h.SetSeed(w.seed)
		for _, l := range page {
			_, _ = h.Write(l)
			_ = h.WriteByte(',')
		}
		mark := pageMark{sum: h.Sum64(), at: now}
		if i < len(w.written) && w.written[i].sum == mark.sum && now.Sub(w.written[i].at) < w.refresh {
			continue // unchanged, and far from expiring
		}
		raw := make([]json.RawMessage, len(page))
		for j, l := range page {
			raw[j] = l
		}
		data, err := json.Marshal(rawLanePage{Replica: w.replica, Page: i, At: now.UTC(), Lanes: raw})
		if err != nil {
			w.log.Error("encode lane page", "page", i, "error", err)
			continue
		}
		f, err := w.js.PublishAsync(w.prefix+dispatcher.LanePageKey(w.replica, i), data)
		if err != nil {
			w.failed("page", i, "error", err)
			continue
		}
		futures = append(futures, sent{page: i, mark: mark, f: f})
	}
	if len(w.written) > len(packed) {
		w.written = w.written[:len(packed)]
	}
	for len(w.written) < len(packed) {
		w.written = append(w.written, pageMark{})
	}
	timeout := time.NewTimer(statusTimeout)
	defer timeout.Stop()
	for _, s := range futures {
		select {
		case <-s.f.Ok():
			w.written[s.page] = s.mark
		case err := <-s.f.Err():
			w.failed("page", s.page, "error", err)
			w.written[s.page] = pageMark{}
		case <-timeout.C:
			w.failed("pages", len(futures), "error", "no ack in time")
			w.forget()
			return len(packed)
		case <-ctx.Done():
			w.forget()
			return len(packed)
		}
	}
	if w.fails == 0 && w.cond != nil {
		w.cond.Clear("", condLanePages)
	}
	return len(packed)
}

// forget makes the next round write every page.
func (w *pageWriter) forget() { clear(w.written) }

// pageOverhead bounds the bytes of an encoded LanePage besides its lanes:
// the field names, the replica id (escaped), the page number and the time.
func pageOverhead(replica string) int { return 128 + 6*len(replica) }

// packLanes splits encoded lanes, in order, into pages whose encoding (the
// overhead, the lanes and a comma between each two) is at most limit
// bytes. A lane larger than a page on its own gets a page to itself.
func packLanes(lanes [][]byte, overhead, limit int) [][][]byte {
	var pages [][][]byte
	var cur [][]byte
	size := overhead
	for _, l := range lanes {
		if len(cur) > 0 && size+1+len(l) > limit {
			pages = append(pages, cur)
			cur, size = nil, overhead
		}
		if len(cur) > 0 {
			size++
		}
		cur = append(cur, l)
		size += len(l)
	}
	if len(cur) > 0 {
		pages = append(pages, cur)
	}
	return pages
}

// laneErrorInput is how much of an error laneError reads: enough for
// MaxLaneErrorBytes after line breaks and runs of spaces are squeezed, and
// little enough that a multi-megabyte error body costs nothing.
const laneErrorInput = 8 * dispatcher.MaxLaneErrorBytes

// laneError is an error as a lane reports it: valid UTF-8, control
// characters and line breaks (of a quoted error body) as single spaces, and
// at most dispatcher.MaxLaneErrorBytes long, cut on a character boundary
// and marked "…" when cut.
func laneError(s string) string {
	cut := len(s) > laneErrorInput
	if cut {
		n := laneErrorInput
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
		if b.Len() > dispatcher.MaxLaneErrorBytes {
			cut = true
			break
		}
	}
	out := b.String()
	if !cut {
		return out
	}
	const ellipsis = "…"
	if n := dispatcher.MaxLaneErrorBytes - len(ellipsis); len(out) > n {
		for n > 0 && !utf8.RuneStart(out[n]) {
			n--
		}
		out = out[:n]
	}
	return strings.TrimRight(out, " ") + ellipsis
}
