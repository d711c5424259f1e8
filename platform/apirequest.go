package platform

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// DefaultAllowedPathPrefixes are the paths api.request may call when neither
// the tenant nor Config.AllowedPathPrefixes says otherwise: the outbound API.
var DefaultAllowedPathPrefixes = []string{"/api/v2/outbound/"}

// Bounds on api.request.
const (
	maxAPIPathLen    = 2048
	maxQueryParams   = 64
	maxQueryKeyLen   = 128
	maxQueryValueLen = 2048
	maxQueryLen      = 8192 // encoded
)

// apiRequestParams are api.request's params.
type apiRequestParams struct {
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Query  map[string]string `json:"query"`
	Body   json.RawMessage   `json:"body"`
}

// apiRequest builds a generic request: method + path (+ query, body).
func apiRequest(params json.RawMessage, allowed []string, checkAllowed bool) (prepared, error) {
	const op = OpAPIRequest
	var p apiRequestParams
	if err := decodeParams(op, params, &p); err != nil {
		return prepared{}, err
	}
	method := strings.ToUpper(p.Method)
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	case "":
		return prepared{}, invalidf(op, "method is required (GET, POST, PUT, PATCH or DELETE)")
	default:
		return prepared{}, invalidf(op, "method %q: want GET, POST, PUT, PATCH or DELETE", truncate(p.Method, 20))
	}
	if p.Path == "" {
		return prepared{}, invalidf(op, "path is required")
	}
	if reason := pathSyntaxProblem(p.Path); reason != "" {
		return prepared{}, invalidf(op, "path %q: %s", truncate(p.Path, 200), reason)
	}
	if checkAllowed && !pathAllowed(p.Path, allowed) {
		return prepared{}, invalidf(op, "path %q is not under an allowed prefix (%s)", truncate(p.Path, 200), strings.Join(allowed, ", "))
	}
	query, err := encodeQuery(p.Query)
	if err != nil {
		return prepared{}, err
	}
	var body []byte
	if raw := bytes.TrimSpace(p.Body); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if method == http.MethodGet {
			return prepared{}, invalidf(op, "a GET request has no body")
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return prepared{}, invalidf(op, "body: %v", err)
		}
		if buf.Len() > MaxRequestBodyBytes {
			return prepared{}, invalidf(op, "body is %d bytes, over the platform's %d-byte limit", buf.Len(), MaxRequestBodyBytes)
		}
		body = buf.Bytes()
	}
	return prepared{op: op, req: request{method: method, path: p.Path, query: query, body: body}}, nil
}

func encodeQuery(q map[string]string) (string, error) {
	const op = OpAPIRequest
	if len(q) == 0 {
		return "", nil
	}
	if len(q) > maxQueryParams {
		return "", invalidf(op, "query: %d parameters, want at most %d", len(q), maxQueryParams)
	}
	vals := make(url.Values, len(q))
	for k, v := range q {
		if k == "" || len(k) > maxQueryKeyLen || hasControl(k) {
			return "", invalidf(op, "query: parameter name %q: want 1-%d printable bytes", truncate(k, 80), maxQueryKeyLen)
		}
		if len(v) > maxQueryValueLen || hasControl(v) {
			return "", invalidf(op, "query: %s: want at most %d printable bytes", truncate(k, 80), maxQueryValueLen)
		}
		vals.Set(k, v)
	}
	enc := vals.Encode()
	if len(enc) > maxQueryLen {
		return "", invalidf(op, "query is %d bytes encoded, want at most %d", len(enc), maxQueryLen)
	}
	return enc, nil
}

// ValidateAPIRequestPath checks an api.request path: a relative URL's absolute
// path ("/api/v2/…") with no scheme or host, no "." or ".." segments, no empty
// segments or trailing slash, no backslash, no control characters, no query or
// fragment, no percent-encoded '.', '/', '\' or '%' (so no encoded or
// double-encoded traversal), under one of allowedPathPrefixes
// (nil: DefaultAllowedPathPrefixes). A prefix ending in '/' matches paths
// below it; one without matches itself and paths below it (whole segments
// only: "/api/v2/users" does not allow "/api/v2/usersX"). Errors are
// *InvalidRequestError.
func ValidateAPIRequestPath(p string, allowedPathPrefixes []string) error {
	if allowedPathPrefixes == nil {
		allowedPathPrefixes = DefaultAllowedPathPrefixes
	}
	if p == "" {
		return invalidf(OpAPIRequest, "path is required")
	}
	if reason := pathSyntaxProblem(p); reason != "" {
		return invalidf(OpAPIRequest, "path %q: %s", truncate(p, 200), reason)
	}
	if !pathAllowed(p, allowedPathPrefixes) {
		return invalidf(OpAPIRequest, "path %q is not under an allowed prefix (%s)", truncate(p, 200), strings.Join(allowedPathPrefixes, ", "))
	}
	return nil
}

// pathLiteral reports whether c may appear unencoded in an api.request path.
func pathLiteral(c byte) bool {
	return isAlnum(c) || strings.IndexByte("-._~/:@,=+", c) >= 0
}

// pathSyntaxProblem returns why p is not a safe api.request path, or "".
func pathSyntaxProblem(p string) string {
	switch {
	case len(p) > maxAPIPathLen:
		return "longer than 2048 bytes"
	case p[0] != '/':
		return `must start with "/" (a path, not a URL)`
	case strings.HasPrefix(p, "//"):
		return `must not start with "//"`
	case strings.Contains(p, "://"):
		return "must not contain a URL"
	case strings.Contains(p, ".."):
		return `must not contain ".."`
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case pathLiteral(c):
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "malformed percent-encoding"
			}
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			switch {
			case d == '.' || d == '/' || d == '\\' || d == '%':
				return "must not percent-encode '.', '/', '\\' or '%'"
			case d < 0x20 || d == 0x7f:
				return "must not contain control characters"
			case d < 0x80 && pathLiteral(d):
				return "must not percent-encode characters that need no encoding"
			}
			i += 2
		case c == '\\':
			return "must not contain a backslash"
		case c == '?' || c == '#':
			return "must not contain '?' or '#' (use query)"
		case c < 0x20 || c == 0x7f:
			return "must not contain control characters"
		default:
			return "contains a character that must be percent-encoded"
		}
	}
	if path.Clean(p) != p {
		return `must be clean: no "." segments, empty segments or trailing "/"`
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
		return "must be a plain path"
	}
	return ""
}

// pathAllowed reports whether p lies under one of prefixes.
func pathAllowed(p string, prefixes []string) bool {
	for _, pre := range prefixes {
		if strings.HasSuffix(pre, "/") {
			if len(p) > len(pre) && strings.HasPrefix(p, pre) {
				return true
			}
		} else if p == pre || strings.HasPrefix(p, pre+"/") {
			return true
		}
	}
	return false
}

// prefixProblem returns why pre is not a usable allow-list prefix, or "".
func prefixProblem(pre string) string {
	if pre == "/" {
		return ""
	}
	if pre == "" || pre[0] != '/' {
		return `must start with "/"`
	}
	if strings.Contains(pre, "%") {
		return "must not contain percent-encoding"
	}
	return pathSyntaxProblem(strings.TrimSuffix(pre, "/"))
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
