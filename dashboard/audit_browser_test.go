package dashboard_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orgdispatch/orgdispatch/api"
)

// TestBrowserShowsAuditTrail: an operator pauses and resumes a tenant
// through the API (the CLI's client); the dashboard, with its token, shows
// both in the audit panel, newest first, with who and why — the reason as
// text, even when it is markup.
func TestBrowserShowsAuditTrail(t *testing.T) {
	st := startStack(t, []e2eTenant{{id: "acme", perMinute: 600, jobsPerSec: 1}, {id: "globex", perMinute: 600, jobsPerSec: 1}})
	c, err := api.NewClient(st.URL, st.Token, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const markup = `<img src=x onerror="window.pwned=1">maintenance`
	if _, err := c.Pause(t.Context(), "globex", time.Minute, markup); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ResumeWithReason(t.Context(), "globex", "done early"); err != nil {
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
	run(t, ctx, "open the audit panel", chromedp.Click(`#audit-panel summary`))
	waitFor(t, ctx, "the resume and the pause, newest first", `(() => {
		const rows = [...document.querySelectorAll('#audit-rows tr')];
		return rows.length >= 2 && rows[0].dataset.action === 'resume' && rows[1].dataset.action === 'pause';
	})()`)
	cell := func(row int, cls string) string {
		return eval[string](t, ctx, fmt.Sprintf(`document.querySelectorAll('#audit-rows tr')[%d].querySelector('.%s').textContent`, row, cls))
	}
	if who, tenant, why := cell(0, "a-who"), cell(0, "a-tenant"), cell(0, "a-why"); who != api.LegacyTokenName || tenant != "globex" || why != "done early" {
		t.Errorf("resume row: who %q tenant %q why %q", who, tenant, why)
	}
	if why := cell(1, "a-why"); !strings.HasPrefix(why, markup) {
		t.Errorf("pause row's why %q, want the reason %q as text", why, markup)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#audit-rows img').length`); n != 0 {
		t.Errorf("the reason's markup became %d elements", n)
	}
	if pwned := eval[bool](t, ctx, `window.pwned === 1`); pwned {
		t.Error("the reason's markup ran script")
	}
	// Still polling the lanes with the panel open.
	waitFor(t, ctx, "the connection live", `document.getElementById('conn').dataset.conn === 'live'`)
}
