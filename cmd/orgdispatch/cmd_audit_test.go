package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/orgdispatch/orgdispatch/api"
)

// TestAuditCommand: the operator's pause, resume (with a reason) and
// dead-letter delete appear in `orgdispatch audit`, newest first, with the
// token's name as who and remote text escaped.
func TestAuditCommand(t *testing.T) {
	startAdminAPI(t)
	if code, out, errs := runCLI(t, "pause", "org_1", "--for", "5m", "--reason", "maint \x1b[31mred"); code != 0 {
		t.Fatalf("pause: %d %s %s", code, out, errs)
	}
	if code, out, errs := runCLI(t, "resume", "org_1", "--reason", "done early"); code != 0 {
		t.Fatalf("resume: %d %s %s", code, out, errs)
	}
	code, out, errs := runCLI(t, "audit")
	if code != 0 {
		t.Fatalf("audit: %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SEQ") {
		t.Fatalf("audit printed:\n%s", out)
	}
	if l := lines[1]; !strings.Contains(l, "resume") || !strings.Contains(l, api.LegacyTokenName) || !strings.Contains(l, "org_1") || !strings.Contains(l, "done early") {
		t.Errorf("newest line %q: want the resume by %s with its reason", l, api.LegacyTokenName)
	}
	if l := lines[2]; !strings.Contains(l, "pause") || !strings.Contains(l, `maint \x1b[31mred`) || !strings.Contains(l, "duration=5m0s") {
		t.Errorf("pause line %q", l)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("audit printed a raw escape: %q", out)
	}
	code, out, _ = runCLI(t, "audit", "--tenant", "org_2")
	if code != 0 || !strings.Contains(out, "no audit records") {
		t.Errorf("audit --tenant org_2: %d %s", code, out)
	}
	code, out, _ = runCLI(t, "audit", "--after", "1", "--json")
	var page api.AuditResponse
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Records) != 1 || page.Records[0].Action != "resume" {
		t.Errorf("audit --after 1 --json: %d %v %s", code, err, out)
	}
}
