package dashboard_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// TestBrowserShowsSchedules: schedules added through the API appear in the
// dashboard's schedules panel for their tenant, with their next run in
// their zone; another tenant's list is empty.
func TestBrowserShowsSchedules(t *testing.T) {
	st := startStack(t, []e2eTenant{{id: "acme", perMinute: 600, jobsPerSec: 1}, {id: "globex", perMinute: 600, jobsPerSec: 1}})
	c, err := api.NewClient(st.URL, st.Token, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	job := dispatcher.Job{ID: "start-1", Op: "campaign.start", Params: json.RawMessage(`{"campaign_id":"c-1"}`)}
	if _, err := c.AddSchedule(t.Context(), "acme", dispatcher.ScheduleSpec{Name: "weekday-start", Cron: "0 0 9 * * 1-5", TimeZone: "America/Chicago", Job: job}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(time.Hour)
	if _, err := c.AddSchedule(t.Context(), "acme", dispatcher.ScheduleSpec{Name: "later", RunAt: &at, Job: job}); err != nil {
		t.Fatal(err)
	}

	ctx := tab(t)
	run(t, ctx, "load dashboard", chromedp.Navigate(st.URL+"/"))
	waitFor(t, ctx, "the token dialog", `document.getElementById('auth').open`)
	run(t, ctx, "enter the API token",
		chromedp.SendKeys(chromedp.ID("token"), st.Token),
		chromedp.Click(chromedp.ID("auth-submit")),
	)
	waitFor(t, ctx, "lanes", `document.querySelectorAll('.lane-row[data-tenant]').length === 2`)
	run(t, ctx, "open the schedules panel", chromedp.Click(`#sched-panel summary`))
	waitFor(t, ctx, "the prompt for a tenant", `document.getElementById('sched-status').textContent === 'Enter a tenant id.'`)
	run(t, ctx, "pick acme", chromedp.SendKeys(chromedp.ID("sched-tenant"), "acme"))
	waitFor(t, ctx, "acme's two schedules", `document.querySelectorAll('#sched-rows tr').length === 2`)
	cell := func(row, cls string) string {
		return eval[string](t, ctx, `document.querySelector('#sched-rows tr[data-name="`+row+`"] .`+cls+`').textContent`)
	}
	if when, zone, next, op := cell("weekday-start", "s-when"), cell("weekday-start", "s-zone"), cell("weekday-start", "s-next"), cell("weekday-start", "s-op"); when != "cron 0 0 9 * * 1-5" || zone != "America/Chicago" || !strings.Contains(next, "9:00:00") || op != "campaign.start" {
		t.Errorf("weekday-start row: when %q zone %q next %q op %q", when, zone, next, op)
	}
	if when, next := cell("later", "s-when"), cell("later", "s-next"); when != "once" || next == "—" {
		t.Errorf("later row: when %q next %q", when, next)
	}
	if !eval[bool](t, ctx, `(() => { document.getElementById('sched-tenant').value = ''; return true; })()`) {
		t.Fatal("clear the tenant field")
	}
	run(t, ctx, "pick globex", chromedp.SendKeys(chromedp.ID("sched-tenant"), "globex"))
	waitFor(t, ctx, "globex has none", `document.getElementById('sched-status').textContent === 'No schedules.' && document.querySelectorAll('#sched-rows tr').length === 0`)
}
