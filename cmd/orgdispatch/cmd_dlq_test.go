package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/orgdispatch/orgdispatch/api"
)

func TestDLQCommands(t *testing.T) {
	a := startAdminAPI(t)
	s1 := a.storeDeadLetter(t, "org_1", "d1")
	s2 := a.storeDeadLetter(t, "org_2", "d2")
	s3 := a.storeDeadLetter(t, "org_1", "d3")

	code, out, errs := adminCLI(t, "dlq", "list")
	if code != 0 {
		t.Fatalf("dlq list: exit %d, stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "SEQ") {
		t.Fatalf("dlq list printed:\n%s\nwant a header and 3 rows", out)
	}
	row := regexp.MustCompile(fmt.Sprintf(`^%d\s+org_2\s+campaign\.start\s+d2\s+permanent\s+404\s+1\s+\S+Z\s+404 campaign not found$`, s2))
	if !row.MatchString(lines[2]) {
		t.Errorf("row %q does not match %s", lines[2], row)
	}

	code, out, _ = adminCLI(t, "dlq", "list", "--tenant", "org_1", "--json")
	var page api.DeadLettersResponse
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.DeadLetters) != 2 ||
		page.DeadLetters[0].Seq != s1 || page.DeadLetters[1].Seq != s3 {
		t.Errorf("dlq list --tenant org_1 --json: exit %d, %v\n%s", code, err, out)
	}

	code, out, _ = adminCLI(t, "dlq", "list", "--limit", "1")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("more may follow: orgdispatch dlq list --after %d", s1)) {
		t.Errorf("dlq list --limit 1: exit %d\n%s", code, out)
	}
	code, out, _ = adminCLI(t, "dlq", "list", "--after", fmt.Sprint(s2))
	if code != 0 || !strings.Contains(out, "d3") || strings.Contains(out, "d1") || strings.Contains(out, "d2") {
		t.Errorf("dlq list --after %d: exit %d\n%s", s2, code, out)
	}

	code, out, errs = adminCLI(t, "dlq", "replay", fmt.Sprint(s1))
	if code != 0 || !regexp.MustCompile(fmt.Sprintf(`^replayed %d as org_1/d1, jobs seq \d+\n$`, s1)).MatchString(out) {
		t.Errorf("dlq replay: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	ts, err := a.client.Tenant(t.Context(), "org_1")
	if err != nil || ts.Backlog != 1 {
		t.Errorf("org_1 backlog after replay = %d (%v), want 1", ts.Backlog, err)
	}

	code, out, errs = adminCLI(t, "dlq", "delete", fmt.Sprint(s2), "999", fmt.Sprint(s3))
	if code != 1 || !strings.Contains(errs, "1 of 3 dead letters not deleted") {
		t.Errorf("dlq delete with a missing sequence: exit %d, stderr %q", code, errs)
	}
	want := fmt.Sprintf("deleted %d\nfailed 999: ", s2)
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "dead letter not found") || !strings.HasSuffix(out, fmt.Sprintf("deleted %d\n", s3)) {
		t.Errorf("dlq delete printed %q", out)
	}

	code, out, _ = adminCLI(t, "dlq", "list")
	if code != 0 || !strings.Contains(out, "no dead letters") {
		t.Errorf("dlq list when empty: exit %d\n%s", code, out)
	}
	code, _, errs = adminCLI(t, "dlq", "replay", fmt.Sprint(s1))
	if code != 1 || !strings.Contains(errs, "1 of 1 dead letters not replayed") {
		t.Errorf("replay of a replayed dead letter: exit %d, stderr %q", code, errs)
	}
}
