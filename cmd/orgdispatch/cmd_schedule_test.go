package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/api"
)

func TestScheduleCommands(t *testing.T) {
	startAdminAPI(t)
	code, out, errs := adminCLI(t, "schedule", "add", "org_1", "weekday-start", "--cron", "0 0 9 * * 1-5", "--tz", "America/Chicago",
		"--op", "campaign.start", "--id", "start", "--params", `{"campaign_id":"cmp-1"}`)
	if code != 0 || !strings.HasPrefix(out, "added org_1/weekday-start, next ") || !strings.Contains(out, " 09:00:00 C") {
		t.Fatalf("schedule add --cron: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, errs = adminCLI(t, "schedule", "add", "org_1", "later", "--in", "2h", "--job", `{"id":"later","op":"campaign.get","params":{"campaign_id":"cmp-1"}}`)
	if code != 0 || !strings.HasPrefix(out, "added org_1/later") {
		t.Fatalf("schedule add --in: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, _ = adminCLI(t, "schedule", "list", "org_1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "later") ||
		!strings.Contains(lines[2], "cron 0 0 9 * * 1-5") || !strings.Contains(lines[2], "America/Chicago") {
		t.Errorf("schedule list: exit %d\n%s", code, out)
	}
	code, out, _ = adminCLI(t, "schedule", "show", "org_1", "weekday-start", "--json")
	var s struct {
		Next []time.Time `json:"next"`
	}
	if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil || len(s.Next) != 5 {
		t.Errorf("schedule show --json: exit %d, %v\n%s", code, err, out)
	}
	code, out, _ = adminCLI(t, "schedule", "list", "org_2", "--json")
	var list api.SchedulesResponse
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list.Schedules) != 0 {
		t.Errorf("schedule list org_2 --json: exit %d, %v\n%s", code, err, out)
	}
	code, out, errs = adminCLI(t, "schedule", "cancel", "--reason", "done", "org_1", "later")
	if code != 0 || out != "cancelled org_1/later\n" {
		t.Errorf("schedule cancel: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, _, errs = adminCLI(t, "schedule", "show", "org_1", "later")
	if code != 1 || !strings.Contains(errs, "404") || !strings.Contains(errs, `no schedule "later"`) {
		t.Errorf("schedule show of a cancelled schedule: exit %d, stderr %q", code, errs)
	}
}

func TestScheduleCommandRejects(t *testing.T) {
	startAdminAPI(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"schedule"}, 2, "want a subcommand"},
		{[]string{"schedule", "fly"}, 2, "unknown schedule subcommand"},
		{[]string{"schedule", "add", "org_1"}, 2, "needs <tenant> <name>"},
		{[]string{"schedule", "add", "org_1", "s", "--op", "campaign.start", "--id", "x"}, 2, "want one of --at, --in and --cron"},
		{[]string{"schedule", "add", "org_1", "s", "--at", "2030-01-01T00:00:00Z", "--cron", "@daily", "--op", "campaign.start", "--id", "x"}, 2, "want one of"},
		{[]string{"schedule", "add", "org_1", "s", "--at", "tomorrow", "--op", "campaign.start", "--id", "x"}, 2, "want an RFC 3339 time"},
		{[]string{"schedule", "add", "org_1", "s", "--at", "2030-01-01T00:00:00Z", "--tz", "UTC", "--op", "campaign.start", "--id", "x"}, 2, "--tz is for --cron"},
		{[]string{"schedule", "add", "org_1", "s", "--in", "1h"}, 2, "want --op and --id"},
		{[]string{"schedule", "add", "org_1", "s", "--in", "1h", "--job", "{"}, 2, "--job"},
		{[]string{"schedule", "add", "org_1", "s", "--in", "1h", "--op", "campaign.start", "--id", "x", "--params", "{"}, 2, "--params is not JSON"},
		// The server's checks, as 400s.
		{[]string{"schedule", "add", "org_1", "s", "--cron", "0 9 * * 1-5", "--op", "campaign.start", "--id", "x", "--params", `{"campaign_id":"c"}`}, 1, "400"},
		{[]string{"schedule", "add", "org_1", "s", "--cron", "@daily", "--tz", "Mars/Base", "--op", "campaign.start", "--id", "x", "--params", `{"campaign_id":"c"}`}, 1, "unknown time zone"},
		{[]string{"schedule", "add", "org_1", "s", "--at", "2020-01-01T00:00:00Z", "--op", "campaign.start", "--id", "x", "--params", `{"campaign_id":"c"}`}, 1, "not in the future"},
		{[]string{"schedule", "add", "org_9", "s", "--in", "1h", "--op", "campaign.start", "--id", "x", "--params", `{"campaign_id":"c"}`}, 1, "404"},
		{[]string{"schedule", "list"}, 2, "needs <tenant>"},
		{[]string{"schedule", "cancel", "org_1"}, 2, "needs <tenant> <name>"},
	} {
		code, _, errs := adminCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d with %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
	code, out, _ := adminCLI(t, "help", "schedule")
	if code != 0 || !strings.Contains(out, "orgdispatch schedule add") || !strings.Contains(out, "-cron") {
		t.Errorf("help schedule: exit %d\n%s", code, out)
	}
}
