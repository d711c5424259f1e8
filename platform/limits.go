package platform

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// limitsPath is the organization limits API: the effective limits of the
// caller's org in one namespace.
const limitsPath = "/api/v2/organizations/limits/namespaces/"

// Limits reads the org's effective limits in namespace (e.g.
// NamespacePlatformAPI) from GET /api/v2/organizations/limits/namespaces/{namespace}.
// It is an API request like any other — BeforeRequest runs first, so it is
// paced by the tenant's limiter and counted against its quota — and fails
// with the same typed errors as Do.
func (c *Client) Limits(ctx context.Context, namespace string) ([]Limit, error) {
	if namespace == "" || !validNamespace(namespace) {
		return nil, &InvalidRequestError{Op: "limits", Reason: fmt.Sprintf("namespace %q: want 1-64 of a-z A-Z 0-9 . _ -", truncate(namespace, 80))}
	}
	res, err := c.send(ctx, "limits", request{method: http.MethodGet, path: limitsPath + url.PathEscape(namespace)})
	if err != nil {
		return nil, err
	}
	var body struct {
		Entities []Limit `json:"entities"`
	}
	if err := json.Unmarshal(res.Body, &body); err != nil {
		return nil, &TransientError{Status: res.Status, CorrelationID: res.CorrelationID, Err: fmt.Errorf("GET %s%s: answer is not a limits listing: %w", limitsPath, namespace, err)}
	}
	out := body.Entities[:0]
	for _, l := range body.Entities {
		l.Key, l.Namespace = cleanText(l.Key, 128), cleanText(l.Namespace, 128)
		if l.Key != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

func validNamespace(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}
