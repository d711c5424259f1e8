package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "name a scenario"},
		{[]string{"bench", "nope"}, `unknown scenario "nope"`},
		{[]string{"bench", "pause", "--svg", "x.svg"}, "only the isolation scenario draws a plot"},
		{[]string{"bench", "pause", "--duration", "-1s"}, "is negative"},
		{[]string{"bench", "pause", "extra"}, "unexpected arguments"},
		{[]string{"bench", "scale", "--consumer-storage", "disk"}, `--consumer-storage "disk": want file or memory`},
		{[]string{"bench", "flood", "--consumer-storage", "disk"}, `--consumer-storage "disk": want file or memory`},
		{[]string{"bench", "pause", "--consumer-storage", "memory"}, "--consumer-storage: only the scale and flood scenarios take it"},
		{[]string{"bench", "pause", "--consumer-storage", "file"}, "--consumer-storage: only the scale and flood scenarios take it"},
		{[]string{"bench", "overhead", "--tenants", "10"}, "--tenants: only the scale and flood scenarios take it"},
		{[]string{"bench", "isolation", "--per-sec", "1"}, "--per-sec: only the scale and flood scenarios take it"},
		{[]string{"bench", "pause", "--nats-url", "nats://127.0.0.1:4222"}, "--nats-url: only the scale and flood scenarios take it"},
		{[]string{"bench", "pause", "--nats-monitor", "http://127.0.0.1:8222"}, "--nats-monitor: only the scale and flood scenarios take it"},
		{[]string{"bench", "utilization", "--cluster", "3"}, "--cluster: only the scale and flood scenarios take it"},
		{[]string{"bench", "pause", "--replicas", "3"}, "--replicas: only the scale and flood scenarios take it"},
		{[]string{"bench", "scale", "--tenants", "0"}, "--tenants 0: want at least 1"},
		{[]string{"bench", "scale", "--tenants", "10001"}, "--tenants 10001: at most 10000"},
		{[]string{"bench", "scale", "--per-sec", "0"}, "--per-sec 0: want a positive number"},
		{[]string{"bench", "flood", "--per-sec", "-0.5"}, "--per-sec -0.5: want a positive number"},
		{[]string{"bench", "scale", "--per-sec", "fast"}, `invalid value "fast" for flag -per-sec`},
		{[]string{"bench", "scale", "--nats-url", "nats://127.0.0.1:4222", "--cluster", "3"}, "--nats-url and --cluster exclude each other"},
		{[]string{"bench", "scale", "--nats-monitor", "http://127.0.0.1:8222"}, "--nats-monitor needs --nats-url"},
		{[]string{"bench", "scale", "--cluster", "2"}, "--cluster 2: want 3 to 5 nodes"},
		{[]string{"bench", "scale", "--replicas", "3"}, "--replicas 3 needs a cluster"},
		{[]string{"bench", "scale", "--cluster", "3", "--replicas", "5"}, "--replicas 5 on a 3-node cluster"},
		{[]string{"bench", "pause", "--legacy-headers"}, "only the utilization scenario takes it"},
		{[]string{"bench", "pause", "--faults", "nats-kill"}, "only the faults scenario takes it"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2; stderr:\n%s", tc.args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: stderr lacks %q:\n%s", tc.args, tc.want, stderr.String())
		}
	}
}

func TestBenchRunWritesJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pause.json")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"bench", "pause", "--duration", "4s", "--json", path, "--dir", t.TempDir()}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"== orgdispatch bench pause", "machine:", "targets:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Scenario string `json:"scenario"`
		Targets  []struct {
			Name string `json:"name"`
			Met  bool   `json:"met"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	if rep.Scenario != "pause" || len(rep.Targets) != 4 {
		t.Errorf("JSON report: %+v", rep)
	}
}
