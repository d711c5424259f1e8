package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// setStatus performs campaign.set_status: GET the campaign, set its
// campaignStatus, PUT the whole body back (its version unchanged, so the PUT
// fails with 409 if someone changed the campaign in between). On a 409 it
// reads and writes once more; a second 409 is the *PermanentError. When the
// campaign already has the wanted status there is nothing to PUT and the
// GET's answer is the result.
func (c *Client) setStatus(ctx context.Context, p prepared) (*Result, error) {
	get := p.req
	for attempt := 1; ; attempt++ {
		res, err := c.send(ctx, p.op, get)
		if err != nil {
			return nil, err
		}
		if res.Truncated {
			return nil, &PermanentError{Status: res.Status, Message: fmt.Sprintf("campaign is larger than MaxResponseBytes (%d): cannot PUT it back", c.cfg.MaxResponseBytes)}
		}
		var campaign map[string]json.RawMessage
		if err := json.Unmarshal(res.Body, &campaign); err != nil || campaign == nil {
			return nil, &TransientError{Status: res.Status, Err: fmt.Errorf("GET %s: answer is not a campaign JSON object", get.path)}
		}
		var current string
		_ = json.Unmarshal(campaign["campaignStatus"], &current)
		if current == p.status {
			return res, nil
		}
		campaign["campaignStatus"], _ = json.Marshal(p.status)
		body, err := marshalBody(campaign)
		if err != nil {
			return nil, &TransientError{Status: res.Status, Err: fmt.Errorf("GET %s: re-encode campaign: %w", get.path, err)}
		}
		if len(body) > MaxRequestBodyBytes {
			return nil, &PermanentError{Status: res.Status, Message: fmt.Sprintf("campaign is %d bytes, over the platform's %d-byte request limit", len(body), MaxRequestBodyBytes)}
		}
		put := request{method: http.MethodPut, path: get.path, body: body}
		res, err = c.send(ctx, p.op, put)
		if pe, ok := errors.AsType[*PermanentError](err); ok && pe.Status == http.StatusConflict && attempt == 1 {
			continue // version conflict: someone else changed it; read it again
		}
		return res, err
	}
}
