package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// putStatusQuery is sent with every campaign PUT, as Genesys's own Terraform
// provider does, so that a decimal maxCallsPerAgent survives the round trip.
const putStatusQuery = "useMaxCallsPerAgentDecimal=true"

// Waiting for a stopped campaign to report off (campaign.stop and
// set_status off with wait_until_off).
const (
	// MaxWaitUntilOff bounds wait_until_off. Genesys's Terraform provider
	// waits up to 180 s; a job holds one of its tenant's concurrency slots
	// while it waits.
	MaxWaitUntilOff = 10 * time.Minute
	// defaultStatusPoll is Config.StatusPollInterval's default.
	defaultStatusPoll = 2 * time.Second
)

// transition says what set_status does for a campaign in status current when
// want (on or off) is asked: put it, treat it as done (already there or on
// its way), or refuse. Only the transitions Genesys's Terraform provider
// makes are PUT — on → off, and off/complete/invalid/forced_off → on — since
// whether the platform accepts others is not documented.
func transition(current, want string) (put bool, err error) {
	switch want {
	case StatusOff:
		switch current {
		case StatusOn:
			return true, nil
		case StatusOff, StatusStopping, StatusForcedOff, StatusForcedStopping, StatusComplete, StatusInvalid:
			return false, nil // off, on its way off, or not running at all
		}
	case StatusOn:
		switch current {
		case StatusOff, StatusComplete, StatusInvalid, StatusForcedOff:
			return true, nil
		case StatusOn:
			return false, nil
		case StatusStopping, StatusForcedStopping:
			// It will be off shortly; then it can be turned on.
			return false, &TransientError{Err: fmt.Errorf("campaign is %s: it can be turned on once it is off", current)}
		}
	}
	return false, &PermanentError{Status: http.StatusOK, Message: fmt.Sprintf("campaign status %q is not one orgdispatch knows: not turning it %s", truncate(current, 40), want)}
}

// setStatus performs campaign.set_status: GET the campaign, and when the
// transition is one the platform accepts (see transition), set its
// campaignStatus and PUT the whole body back with its version unchanged (so
// the PUT fails with 409 if someone changed the campaign in between). On a
// 409 it reads and writes once more; a second 409 is the *PermanentError.
// When the campaign already has (or is moving to) the wanted status there is
// nothing to PUT and the GET's answer is the result. With wait_until_off it
// then polls until the campaign reports off.
func (c *Client) setStatus(ctx context.Context, p prepared) (*Result, error) {
	get := p.req
	for attempt := 1; ; attempt++ {
		res, campaign, current, err := c.getCampaign(ctx, p.op, get)
		if err != nil {
			return nil, err
		}
		put, err := transition(current, p.status)
		if err != nil {
			return nil, withCorrelation(err, res.CorrelationID)
		}
		if !put {
			return c.waitUntilOff(ctx, p, res, current)
		}
		if res.Truncated {
			return nil, &PermanentError{Status: res.Status, CorrelationID: res.CorrelationID, Message: fmt.Sprintf("campaign is larger than MaxResponseBytes (%d): cannot PUT it back", c.cfg.MaxResponseBytes)}
		}
		campaign["campaignStatus"], _ = json.Marshal(p.status)
		body, err := marshalBody(campaign)
		if err != nil {
			return nil, &TransientError{Status: res.Status, Err: fmt.Errorf("GET %s: re-encode campaign: %w", get.path, err)}
		}
		if len(body) > MaxRequestBodyBytes {
			return nil, &PermanentError{Status: res.Status, Message: fmt.Sprintf("campaign is %d bytes, over the platform's %d-byte request limit", len(body), MaxRequestBodyBytes)}
		}
		putReq := request{method: http.MethodPut, path: get.path, query: putStatusQuery, body: body}
		res, err = c.send(ctx, p.op, putReq)
		if pe, ok := errors.AsType[*PermanentError](err); ok && pe.Status == http.StatusConflict && attempt == 1 {
			continue // version conflict: someone else changed it; read it again
		}
		if err != nil {
			return nil, err
		}
		return c.waitUntilOff(ctx, p, res, "") // the PUT started the stop: poll
	}
}

// getCampaign GETs a campaign and decodes it as a JSON object with its
// campaignStatus.
func (c *Client) getCampaign(ctx context.Context, op string, get request) (*Result, map[string]json.RawMessage, string, error) {
	res, err := c.send(ctx, op, get)
	if err != nil {
		return nil, nil, "", err
	}
	var campaign map[string]json.RawMessage
	if err := json.Unmarshal(res.Body, &campaign); err != nil || campaign == nil {
		if res.Truncated {
			return nil, nil, "", &PermanentError{Status: res.Status, CorrelationID: res.CorrelationID, Message: fmt.Sprintf("campaign is larger than MaxResponseBytes (%d)", c.cfg.MaxResponseBytes)}
		}
		return nil, nil, "", &TransientError{Status: res.Status, CorrelationID: res.CorrelationID, Err: fmt.Errorf("GET %s: answer is not a campaign JSON object", get.path)}
	}
	var current string
	_ = json.Unmarshal(campaign["campaignStatus"], &current)
	return res, campaign, current, nil
}

// stillStopping reports whether a campaign in status s has yet to reach off.
func stillStopping(s string) bool {
	return s == StatusOn || s == StatusStopping || s == StatusForcedStopping
}

// waitUntilOff returns res at once unless the job asked to wait until its
// campaign is off (p.waitOff > 0, for campaign.stop and set_status off).
// Then it polls the campaign every StatusPollInterval — each GET goes through
// BeforeRequest like any request, so within the tenant's quota and pause —
// until it no longer reports on, stopping or forced_stopping, and returns
// that answer. Still stopping after p.waitOff is a *TransientError.
func (c *Client) waitUntilOff(ctx context.Context, p prepared, res *Result, status string) (*Result, error) {
	if p.waitOff <= 0 {
		return res, nil
	}
	if !stillStopping(status) && status != "" {
		return res, nil
	}
	get := request{method: http.MethodGet, path: campaignPath(p.campaignID)}
	deadline := c.cfg.Now().Add(p.waitOff)
	for {
		t := time.NewTimer(c.cfg.StatusPollInterval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if cerr := canceled(ctx); cerr != nil {
				return nil, fmt.Errorf("platform: wait for campaign %s to stop: %w", p.campaignID, cerr)
			}
			return nil, &TransientError{Err: fmt.Errorf("wait for campaign %s to stop: %w", p.campaignID, ctx.Err())}
		}
		got, _, current, err := c.getCampaign(ctx, p.op, get)
		if err != nil {
			return nil, err
		}
		if !stillStopping(current) {
			return got, nil
		}
		if !c.cfg.Now().Before(deadline) {
			return nil, &TransientError{Status: got.Status, CorrelationID: got.CorrelationID,
				Err: fmt.Errorf("campaign %s still %s after %s", p.campaignID, current, p.waitOff)}
		}
	}
}

// withCorrelation sets the correlation id of a typed error built from an
// answer's content (transition's) to that answer's.
func withCorrelation(err error, id string) error {
	switch e := err.(type) {
	case *TransientError:
		e.CorrelationID = id
	case *PermanentError:
		e.CorrelationID = id
	}
	return err
}
