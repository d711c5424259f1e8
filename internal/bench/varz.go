package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// varzSampler reads external nats-servers' CPU and RSS from their HTTP
// monitor's /varz once a second and when it stops: "cpu" is the server process's CPU in
// percent of one core over about the last second (nats-server samples
// /proc/self/stat every second), "mem" its resident set in bytes.
type varzSampler struct {
	urls   []string
	client *http.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	cpuSum  []float64 // per server: sum of the cpu samples
	samples []int
	mem     []int64 // per server: the last mem sample
	peak    []int64 // per server: the largest mem sample
	err     error   // the first failed read
}

// serverUsage is what a varzSampler measured: the servers' CPU in cores
// (the mean of each server's samples, summed over servers) and RSS (the
// last and largest samples, summed over servers).
type serverUsage struct {
	Cores  float64
	RSSMB  float64
	PeakMB float64
}

// parseMonitorURLs splits a comma-separated list of monitor base URLs
// (e.g. http://127.0.0.1:8222).
func parseMonitorURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSuffix(strings.TrimSpace(u), "/"); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// startVarz starts sampling urls' /varz once a second until stop; nil when
// there are none.
func startVarz(ctx context.Context, urls []string) *varzSampler {
	if len(urls) == 0 {
		return nil
	}
	v := &varzSampler{
		urls:    urls,
		client:  &http.Client{Timeout: 2 * time.Second},
		done:    make(chan struct{}),
		cpuSum:  make([]float64, len(urls)),
		samples: make([]int, len(urls)),
		mem:     make([]int64, len(urls)),
		peak:    make([]int64, len(urls)),
	}
	ctx, v.cancel = context.WithCancel(ctx)
	withComponent(ctx, compLoadgen, func(ctx context.Context) {
		go v.loop(ctx)
	})
	return v
}

func (v *varzSampler) loop(ctx context.Context) {
	defer close(v.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		v.sample(ctx)
	}
}

// sample reads every server's /varz once.
func (v *varzSampler) sample(ctx context.Context) {
	for i, u := range v.urls {
		cpu, mem, err := readVarz(ctx, v.client, u)
		v.mu.Lock()
		switch {
		case err != nil && ctx.Err() == nil && v.err == nil:
			v.err = err
		case err == nil:
			v.cpuSum[i] += cpu
			v.samples[i]++
			v.mem[i] = mem
			v.peak[i] = max(v.peak[i], mem)
		}
		v.mu.Unlock()
	}
}

// stop ends the sampling with a last sample and returns what it measured;
// an error when a server gave no sample or a read failed.
func (v *varzSampler) stop() (serverUsage, error) {
	v.cancel()
	<-v.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	v.sample(ctx)
	cancel()
	v.client.CloseIdleConnections()
	v.mu.Lock()
	defer v.mu.Unlock()
	var u serverUsage
	for i := range v.urls {
		if v.samples[i] == 0 {
			return serverUsage{}, errors.Join(fmt.Errorf("bench: %s/varz: no sample", v.urls[i]), v.err)
		}
		u.Cores += v.cpuSum[i] / float64(v.samples[i]) / 100
		u.RSSMB += float64(v.mem[i]) / (1 << 20)
		u.PeakMB += float64(v.peak[i]) / (1 << 20)
	}
	return u, v.err
}

// readVarz reads one server's /varz cpu (percent) and mem (bytes).
func readVarz(ctx context.Context, c *http.Client, base string) (cpu float64, mem int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/varz", nil)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: monitor %s: %w", base, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: monitor %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("bench: monitor %s/varz: %s", base, resp.Status)
	}
	var varz struct {
		CPU float64 `json:"cpu"`
		Mem int64   `json:"mem"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&varz); err != nil {
		return 0, 0, fmt.Errorf("bench: monitor %s/varz: %w", base, err)
	}
	return varz.CPU, varz.Mem, nil
}
