package faultsuite

import (
	"fmt"
	"strings"
)

// tenantSet is the run's tenants as an orgdispatch tenants file states
// them; every process gets its own file, pointing at its own platform
// listener.
type tenantSet struct {
	ids         []string
	secrets     map[string]string // tenant → the client secret the file names
	ratePerMin  int
	concurrency int
	maxAttempts int
}

// clientID is tenant's OAuth client id at the simulator.
func clientID(tenant string) string { return "client_" + tenant }

// yaml is the tenants file for a process whose API base is apiBase and
// whose token endpoint is tokenURL.
func (ts tenantSet) yaml(apiBase, tokenURL string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "defaults: {rate_per_minute: %d, concurrency: %d, max_attempts: %d}\ntenants:\n", ts.ratePerMin, ts.concurrency, ts.maxAttempts)
	for _, id := range ts.ids {
		fmt.Fprintf(&b, "  - id: %s\n    client_id: %s\n    client_secret: %q\n    api_base: %s\n    token_url: %s\n",
			id, clientID(id), ts.secrets[id], apiBase, tokenURL)
	}
	return []byte(b.String())
}
