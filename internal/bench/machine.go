package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// Machine describes where a scenario ran, so that its figures can be read
// against the hardware and the load others put on it.
type Machine struct {
	CPUModel   string `json:"cpu_model"`
	Cores      int    `json:"cores"`      // runtime.NumCPU
	GOMAXPROCS int    `json:"gomaxprocs"` // runtime.GOMAXPROCS(0)
	MemTotalMB int    `json:"mem_total_mb"`
	MemAvailMB int    `json:"mem_available_mb"`
	GoVersion  string `json:"go_version"`
	NATSServer string `json:"nats_server_version"`
	// NATSMode says where the servers ran when not one embedded server:
	// an embedded cluster, or an external server (NATSServer is then the
	// version it reports).
	NATSMode     string  `json:"nats_mode,omitempty"`
	OS           string  `json:"os"`
	Arch         string  `json:"arch"`
	LoadAvgStart float64 `json:"load_avg_1m_start"` // from /proc/loadavg when the scenario began
	LoadAvgEnd   float64 `json:"load_avg_1m_end"`   // and when it ended: > 0 with nothing else running says others used the machine
}

// probeMachine reads the machine's description. Values it cannot read are
// left zero.
func probeMachine() Machine {
	m := Machine{
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		NATSServer: server.VERSION,
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemTotalMB = meminfoMB(data, "MemTotal")
		m.MemAvailMB = meminfoMB(data, "MemAvailable")
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	m.LoadAvgStart = loadAvg()
	return m
}

// meminfoMB returns the /proc/meminfo field key (reported in kB) in MiB.
func meminfoMB(data []byte, key string) int {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.Atoi(f[0])
		if err != nil {
			return 0
		}
		return kb / 1024
	}
	return 0
}

// loadAvg is the 1-minute load average, 0 when unknown.
func loadAvg() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
