package api

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// DefaultHosts are the Host names the server answers to when Config.Hosts
// is empty: the loopback names. IP literals are always accepted (see
// checkHost).
var DefaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// AnyHost in Config.Hosts turns the Host check off (behind a proxy that
// checks it).
const AnyHost = "*"

// hostSet is the set of Host names (lower case, no port, no trailing dot)
// the server answers to.
type hostSet struct {
	any   bool
	names map[string]bool
}

func newHostSet(hosts []string) hostSet {
	if len(hosts) == 0 {
		hosts = DefaultHosts
	}
	hs := hostSet{names: map[string]bool{}}
	for _, h := range hosts {
		h = normalHost(h)
		if h == AnyHost {
			hs.any = true
		}
		if h != "" {
			hs.names[h] = true
		}
	}
	return hs
}

// normalHost lower-cases a host name and drops a port, brackets and a
// trailing dot.
func normalHost(h string) string {
	h = strings.TrimSpace(h)
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// allows reports whether a request's Host header may be answered. A DNS
// rebinding attack makes the browser send the attacker's own domain name as
// Host, so only configured names are answered. An IP literal is always
// answered: a browser sends one only for a page loaded from that very
// address, which is no rebinding (and kubelet probes and Prometheus scrapes
// address pods by IP).
func (hs hostSet) allows(host string) bool {
	h := normalHost(host)
	if h == "" {
		return false
	}
	if hs.any || hs.names[h] {
		return true
	}
	return net.ParseIP(h) != nil
}

// HostCheck answers 421 to a request whose Host is not one of hosts (see
// Config.Hosts: empty means DefaultHosts, IP literals always pass), and
// passes the rest to next. It is the Server's DNS-rebinding check, for
// other servers of the process (a worker replica's metrics and health).
func HostCheck(hosts []string, next http.Handler) http.Handler {
	hs := newHostSet(hosts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hs.allows(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("host %q is not one this server answers to (see ORGDISPATCH_HTTP_HOSTS)", normalHost(r.Host)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// safeMethod reports whether a method only reads.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// guard refuses requests a browser could be tricked into sending:
//
//   - any request whose Host is not one the server answers to (DNS
//     rebinding): 421 Misdirected Request;
//   - a write (any method but GET, HEAD, OPTIONS) that a browser marks as
//     cross-site or same-site (Sec-Fetch-Site), or whose Origin is not the
//     server's own: 403;
//   - a POST, PUT or PATCH (or a DELETE with a body) whose Content-Type is
//     not application/json: 415. A cross-origin page can send text/plain,
//     form or multipart bodies without a CORS preflight, never JSON.
//
// The server sends no CORS headers, so a cross-origin page cannot read any
// answer either. Token or not, these checks apply.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hosts.allows(r.Host) {
			s.refused(r, "", "", "host not allowed")
			writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("host %q is not one this server answers to (see ORGDISPATCH_HTTP_HOSTS)", normalHost(r.Host)))
			return
		}
		if safeMethod(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		if why := crossSite(r); why != "" {
			s.refused(r, "", "", "cross-site write")
			writeError(w, http.StatusForbidden, "cross-site request refused: "+why)
			return
		}
		if needsJSON(r) {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// needsJSON reports whether a write must declare a JSON body: every POST,
// PUT and PATCH (with a body or without), and a DELETE with a body.
func needsJSON(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return true
	}
	return r.ContentLength != 0 || r.Header.Get("Content-Type") != ""
}

// crossSite says why a write came from another site, or "" when nothing
// says so. Browsers send Sec-Fetch-Site and Origin; other clients (curl,
// the Go client) send neither and are judged by their token alone.
func crossSite(r *http.Request) string {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return "Sec-Fetch-Site is " + site
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return "Origin is " + origin
	}
	if !strings.EqualFold(u.Host, r.Host) {
		return "Origin " + origin + " is not this server"
	}
	return ""
}
