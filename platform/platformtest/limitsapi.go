package platformtest

import (
	"net/http"
	"slices"
	"strings"
)

// limitsPath is the organization limits API.
const limitsPath = "/api/v2/organizations/limits/namespaces"

// limitEntities is the body of GET …/limits/namespaces/{namespace}.
type limitEntities struct {
	Entities []Limit `json:"entities"`
}

// namespaceListing is the body of GET …/limits/namespaces.
type namespaceListing struct {
	Entities   []namespaceName `json:"entities"`
	PageSize   int             `json:"pageSize"`
	PageNumber int             `json:"pageNumber"`
	Total      int             `json:"total"`
}

type namespaceName struct {
	Name string `json:"name"`
}

// serveLimits is the organization limits API:
//
//   - GET /api/v2/organizations/limits/namespaces lists the namespaces
//     with limits in the simulator: PlatformAPINamespace and those of
//     Config.EndpointLimits;
//   - GET /api/v2/organizations/limits/namespaces/{namespace} answers the
//     limits in force in namespace, per minute, as the caller sees them:
//     the main limit (none while Limit is 0) and the endpoint limits of
//     that namespace; an unknown namespace is 404.
//
// Both are API requests like any other: authenticated, faulted and
// counted against the windows before they get here.
func (s *Simulator) serveLimits(r *http.Request, p string) answer {
	rest, _ := strings.CutPrefix(p, limitsPath)
	if rest != "" && (rest[0] != '/' || len(rest) == 1 || strings.Contains(rest[1:], "/")) {
		return s.notFound(p)
	}
	if r.Method != http.MethodGet {
		return s.notAllowed(http.MethodGet)
	}
	names := s.limitNamespaces()
	if rest == "" {
		out := namespaceListing{Entities: make([]namespaceName, len(names)), PageSize: len(names), PageNumber: 1, Total: len(names)}
		for i, n := range names {
			out.Entities[i] = namespaceName{Name: n}
		}
		return s.ok(out)
	}
	ns := rest[1:]
	if !slices.Contains(names, ns) {
		return s.fail(http.StatusNotFound, "not.found", "Limit namespace "+ns+" not found")
	}
	out := limitEntities{Entities: []Limit{}}
	if l := *s.limits.Load(); ns == PlatformAPINamespace && l.limit > 0 {
		out.Entities = append(out.Entities, Limit{Key: TokenRateLimitKey, Namespace: PlatformAPINamespace, Value: perMinute(l.limit, l.window)})
	}
	for _, e := range s.cfg.EndpointLimits {
		if e.Namespace == ns {
			out.Entities = append(out.Entities, s.endpointLimit(e))
		}
	}
	return s.ok(out)
}

// limitNamespaces lists PlatformAPINamespace, then the namespaces of
// Config.EndpointLimits in their order, each once.
func (s *Simulator) limitNamespaces() []string {
	names := []string{PlatformAPINamespace}
	for _, e := range s.cfg.EndpointLimits {
		if !slices.Contains(names, e.Namespace) {
			names = append(names, e.Namespace)
		}
	}
	return names
}

// endpointLimit is e as the limits API and 429 bodies name it.
func (s *Simulator) endpointLimit(e EndpointLimit) Limit {
	w := e.Window
	if w == 0 {
		w = s.limits.Load().window
	}
	return Limit{Key: e.Key, Namespace: e.Namespace, Value: perMinute(e.Limit, w)}
}
