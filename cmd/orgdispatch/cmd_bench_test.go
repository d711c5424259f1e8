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
		{[]string{"bench", "pause", "--consumer-storage", "memory"}, "only the scale scenario takes it"},
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
