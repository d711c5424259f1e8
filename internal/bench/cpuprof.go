package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"time"
)

// The goroutine label that attributes CPU samples to a part of the bench
// process. Goroutines inherit labels from the goroutine that starts them, so
// starting each component inside withComponent labels everything it spawns:
// the worker pool's lanes and its NATS and HTTP client connections, the
// embedded nats-server's client and JetStream goroutines, the simulator's
// HTTP connections, the load generator.
const componentLabel = "component"

// Components the CPU breakdown distinguishes.
const (
	compWorker    = "worker"      // orgdispatch worker pool (or a baseline pool), its NATS + HTTP clients
	compNATS      = "nats-server" // the embedded JetStream server
	compSimulator = "simulator"   // the platform simulator and its HTTP server
	compLoadgen   = "loadgen"     // job publishers
	compRaw       = "raw-consumer"
	compOther     = "unlabelled" // GC, runtime timers, anything started outside a label
	// compNATSUnlabelled is unlabelled CPU spent in nats-server's code: the
	// goroutines the runtime starts for its timers (time.AfterFunc: ack
	// and redelivery timers, …), which inherit no label.
	compNATSUnlabelled = "nats-server (unlabelled: timers)"
)

// natsServerPackage prefixes the functions of nats-server's code in a
// profile.
const natsServerPackage = "github.com/nats-io/nats-server/"

// withComponent runs f with the component label set on its goroutine (and so
// on every goroutine f starts).
func withComponent(ctx context.Context, name string, f func(context.Context)) {
	pprof.Do(ctx, pprof.Labels(componentLabel, name), f)
}

// cpuProfile is a running CPU profile whose samples are later split by
// component label.
type cpuProfile struct {
	buf   bytes.Buffer
	start time.Time
}

// startCPUProfile starts the process's CPU profiler. It fails when another
// profile is running (e.g. go test -cpuprofile).
func startCPUProfile() (*cpuProfile, error) {
	p := &cpuProfile{start: time.Now()}
	if err := pprof.StartCPUProfile(&p.buf); err != nil {
		return nil, fmt.Errorf("bench: start CPU profile: %w", err)
	}
	return p, nil
}

// CPUShare is the CPU time one component used while a profile ran.
type CPUShare struct {
	Component string  `json:"component"`
	Cores     float64 `json:"cores"`    // CPU seconds per wall second
	Fraction  float64 `json:"fraction"` // of all sampled CPU
}

// stopTo ends the profile, writes it to dir/name.pprof when dir is set (for
// go tool pprof) and returns the CPU used per component, largest first.
func (p *cpuProfile) stopTo(dir, name string) ([]CPUShare, error) {
	pprof.StopCPUProfile()
	wall := time.Since(p.start)
	if dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name+".pprof"), p.buf.Bytes(), 0o644); err != nil {
			return nil, fmt.Errorf("bench: write CPU profile: %w", err)
		}
	}
	byComp, err := cpuByComponent(p.buf.Bytes())
	if err != nil {
		return nil, err
	}
	var total time.Duration
	for _, d := range byComp {
		total += d
	}
	out := make([]CPUShare, 0, len(byComp))
	for c, d := range byComp {
		if c == "" {
			c = compOther
		}
		out = append(out, CPUShare{Component: c, Cores: d.Seconds() / wall.Seconds(), Fraction: ratio(float64(d), float64(total))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cores > out[j].Cores })
	return out, nil
}

// nats-server labels the goroutines of its streams and consumers itself
// (account, stream, consumer), replacing inherited labels: those samples are
// the server's too.
var natsServerLabels = []string{"account", "stream", "consumer"}

// cpuByComponent sums a gzipped pprof CPU profile's sample times by
// component: the component label's value, compNATS for samples with one of
// nats-server's own labels, compNATSUnlabelled for the other unlabelled
// samples with a nats-server function on their stack, "" for the rest. It
// reads just enough of profile.proto to do so: samples (values, labels,
// locations), locations (their functions), functions (their names) and the
// string table.
func cpuByComponent(gz []byte) (map[string]time.Duration, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("bench: CPU profile: %w", err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("bench: CPU profile: %w", err)
	}
	type sample struct {
		values []int64
		labels [][2]int64 // key, str string-table indices
		locs   []uint64
	}
	var (
		samples     []sample
		strs        []string
		sampleTypes [][]byte
		locFuncs    = map[uint64][]uint64{} // location id → function ids
		funcNames   = map[uint64]int64{}    // function id → name's string index
	)
	err = eachField(data, func(num int, wire int, v uint64, b []byte) error {
		switch num {
		case 1: // sample_type
			sampleTypes = append(sampleTypes, b)
		case 4: // location
			var id uint64
			var fns []uint64
			err := eachField(b, func(num int, _ int, v uint64, b []byte) error {
				switch num {
				case 1: // id
					id = v
				case 4: // line
					return eachField(b, func(num int, _ int, v uint64, _ []byte) error {
						if num == 1 { // function_id
							fns = append(fns, v)
						}
						return nil
					})
				}
				return nil
			})
			if err != nil {
				return err
			}
			locFuncs[id] = fns
		case 5: // function
			var id uint64
			var name int64
			if err := eachField(b, func(num int, _ int, v uint64, _ []byte) error {
				switch num {
				case 1: // id
					id = v
				case 2: // name
					name = int64(v)
				}
				return nil
			}); err != nil {
				return err
			}
			funcNames[id] = name
		case 2: // sample
			var s sample
			err := eachField(b, func(num int, wire int, v uint64, b []byte) error {
				switch num {
				case 1: // location_id
					if wire == 2 {
						return eachVarint(b, func(x uint64) { s.locs = append(s.locs, x) })
					}
					s.locs = append(s.locs, v)
				case 2: // value
					if wire == 2 {
						return eachVarint(b, func(x uint64) { s.values = append(s.values, int64(x)) })
					}
					s.values = append(s.values, int64(v))
				case 3: // label
					var k, str int64
					if err := eachField(b, func(num int, _ int, v uint64, _ []byte) error {
						switch num {
						case 1:
							k = int64(v)
						case 2:
							str = int64(v)
						}
						return nil
					}); err != nil {
						return err
					}
					s.labels = append(s.labels, [2]int64{k, str})
				}
				return nil
			})
			if err != nil {
				return err
			}
			samples = append(samples, s)
		case 6: // string_table
			strs = append(strs, string(b))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bench: CPU profile: %w", err)
	}
	// The CPU time is the value whose type is "cpu" (the second, in
	// nanoseconds, in Go's CPU profiles).
	idx := -1
	for i, st := range sampleTypes {
		var typ int64
		_ = eachField(st, func(num int, _ int, v uint64, _ []byte) error {
			if num == 1 {
				typ = int64(v)
			}
			return nil
		})
		if typ >= 0 && int(typ) < len(strs) && strs[typ] == "cpu" {
			idx = i
		}
	}
	if idx < 0 {
		return nil, errors.New("bench: CPU profile has no cpu sample type")
	}
	inServerCode := func(locs []uint64) bool {
		for _, l := range locs {
			for _, f := range locFuncs[l] {
				if n, ok := funcNames[f]; ok && int(n) < len(strs) && strings.HasPrefix(strs[n], natsServerPackage) {
					return true
				}
			}
		}
		return false
	}
	out := map[string]time.Duration{}
	for _, s := range samples {
		if idx >= len(s.values) {
			continue
		}
		val, server := "", false
		for _, l := range s.labels {
			if int(l[0]) >= len(strs) || int(l[1]) >= len(strs) {
				continue
			}
			switch k := strs[l[0]]; {
			case k == componentLabel:
				val = strs[l[1]]
			case slices.Contains(natsServerLabels, k):
				server = true
			}
		}
		if val == "" && server {
			val = compNATS
		}
		if val == "" && inServerCode(s.locs) {
			val = compNATSUnlabelled
		}
		out[val] += time.Duration(s.values[idx])
	}
	return out, nil
}

// eachField calls f for every field of a protobuf message: its number, wire
// type, and its varint value (wire 0) or bytes (wire 2). Fixed-width fields
// are skipped.
func eachField(b []byte, f func(num, wire int, v uint64, b []byte) error) error {
	for len(b) > 0 {
		key, n := uvarint(b)
		if n <= 0 {
			return errors.New("bad field key")
		}
		b = b[n:]
		num, wire := int(key>>3), int(key&7)
		switch wire {
		case 0:
			v, n := uvarint(b)
			if n <= 0 {
				return errors.New("bad varint")
			}
			b = b[n:]
			if err := f(num, wire, v, nil); err != nil {
				return err
			}
		case 1:
			if len(b) < 8 {
				return errors.New("short fixed64")
			}
			b = b[8:]
		case 2:
			l, n := uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errors.New("bad length")
			}
			v := b[n : n+int(l)]
			b = b[n+int(l):]
			if err := f(num, wire, 0, v); err != nil {
				return err
			}
		case 5:
			if len(b) < 4 {
				return errors.New("short fixed32")
			}
			b = b[4:]
		default:
			return fmt.Errorf("unsupported wire type %d", wire)
		}
	}
	return nil
}

// eachVarint calls f for each varint of a packed repeated field.
func eachVarint(b []byte, f func(uint64)) error {
	for len(b) > 0 {
		v, n := uvarint(b)
		if n <= 0 {
			return errors.New("bad packed varint")
		}
		f(v)
		b = b[n:]
	}
	return nil
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	var s uint
	for i, c := range b {
		if i == 10 {
			return 0, -1
		}
		if c < 0x80 {
			return x | uint64(c)<<s, i + 1
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, 0
}
