package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// memStatus is the process's resident memory from /proc/self/status.
type memStatus struct {
	RSSMB float64 // VmRSS: resident now
	HWMMB float64 // VmHWM: peak resident since the process started
}

func readMemStatus() memStatus {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return memStatus{}
	}
	var m memStatus
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSSMB = kb / 1024
		case "VmHWM":
			m.HWMMB = kb / 1024
		}
	}
	return m
}

// cpuTime is the process's user+system CPU time so far (getrusage).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
