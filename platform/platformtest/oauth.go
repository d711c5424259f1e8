package platformtest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"
)

// maxTokenRequestBytes bounds a token request's form body.
const maxTokenRequestBytes = 64 << 10

// tokenError is the OAuth token endpoint's error body; the platform repeats
// the description as error_description.
type tokenError struct {
	Error            string `json:"error"`
	Description      string `json:"description"`
	ErrorDescription string `json:"error_description"`
}

// tokenResponse is a successful token answer.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

func tokenFail(status int, code, desc string) answer {
	body, _ := json.Marshal(tokenError{Error: code, Description: desc, ErrorDescription: desc})
	a := answer{status: status, body: body, retryAfter: -1,
		header: [][2]string{{"Cache-Control", "no-store"}, {"Pragma", "no-cache"}}}
	if status == http.StatusUnauthorized {
		a.header = append(a.header, [2]string{"WWW-Authenticate", `Basic realm="oauth"`})
	}
	return a
}

// serveToken is POST /oauth/token: the client-credentials grant with the
// client authenticated by HTTP Basic (the only client authentication the
// simulator accepts; client_id/client_secret form fields are refused).
func (s *Simulator) serveToken(w http.ResponseWriter, r *http.Request, rec Request) {
	a, cl := s.token(r, &rec)
	s.finish(w, r, rec, cl, a, kindToken)
}

func (s *Simulator) token(r *http.Request, rec *Request) (answer, *client) {
	if r.Method != http.MethodPost {
		a := tokenFail(http.StatusMethodNotAllowed, "invalid_request", "the token endpoint accepts POST only")
		a.header = append(a.header, [2]string{"Allow", http.MethodPost})
		return a, nil
	}
	id, secret, hasBasic := r.BasicAuth()
	cl := (*client)(nil)
	if hasBasic {
		if cl = s.client(id); cl != nil {
			rec.ClientID, rec.Org = cl.id, cl.org.id
		}
	}
	if cl != nil {
		if secs, ok := cl.takeTokenThrottle(); ok {
			return s.tooManyRequests(secs, nil), cl
		}
	}
	if s.outage.Load() {
		return tokenFail(http.StatusServiceUnavailable, "temporarily_unavailable", "the token service is temporarily unavailable"), cl
	}
	form, err := readForm(r)
	if err != nil {
		return tokenFail(http.StatusBadRequest, "invalid_request", "the request body is not a valid form: "+err.Error()), cl
	}
	if !hasBasic {
		desc := "client authentication is required in the Authorization header (HTTP Basic)"
		if form.Has("client_id") || form.Has("client_secret") {
			desc = "client credentials in the request body are not supported; use the Authorization header (HTTP Basic)"
		}
		return tokenFail(http.StatusUnauthorized, "invalid_client", desc), nil
	}
	if cl == nil {
		return tokenFail(http.StatusUnauthorized, "invalid_client", "client not found"), nil
	}
	cl.mu.Lock()
	good := subtle.ConstantTimeCompare([]byte(secret), []byte(cl.secret)) == 1
	cl.mu.Unlock()
	if !good {
		return tokenFail(http.StatusUnauthorized, "invalid_client", "authentication failed"), cl
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		return tokenFail(http.StatusBadRequest, "invalid_request", "grant_type is required"), cl
	default:
		return tokenFail(http.StatusBadRequest, "unsupported_grant_type", "grant type "+gt+" is not supported"), cl
	}
	t := s.issue(cl, rec.At)
	body, _ := json.Marshal(tokenResponse{AccessToken: t.value, TokenType: "bearer", ExpiresIn: ceilSeconds(s.cfg.TokenTTL)})
	return answer{status: http.StatusOK, body: body, retryAfter: -1,
		header: [][2]string{{"Cache-Control", "no-store"}, {"Pragma", "no-cache"}}}, cl
}

// readForm parses an application/x-www-form-urlencoded body (whatever the
// Content-Type says, as lenient servers do).
func readForm(r *http.Request) (url.Values, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTokenRequestBytes))
	if err != nil {
		return nil, err
	}
	return url.ParseQuery(string(body))
}

// issue creates a token for cl, forgetting cl's expired tokens.
func (s *Simulator) issue(cl *client, now time.Time) *token {
	t := &token{value: rand.Text() + rand.Text(), client: cl, buckets: cl.buckets}
	if t.buckets == nil {
		t.buckets = newBuckets(len(s.cfg.EndpointLimits))
	}
	t.expires.Store(now.Add(s.cfg.TokenTTL).UnixNano())
	cl.mu.Lock()
	live := cl.tokens[:0]
	for _, old := range cl.tokens {
		if old.expired(now) {
			s.tokens.Delete(old.value)
		} else {
			live = append(live, old)
		}
	}
	clear(cl.tokens[len(live):])
	cl.tokens = append(live, t)
	cl.mu.Unlock()
	s.tokens.Store(t.value, t)
	return t
}

// takeTokenThrottle consumes one pending ThrottleTokens answer of cl and
// returns its Retry-After seconds.
func (cl *client) takeTokenThrottle() (int, bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.tokenThrottleN <= 0 {
		return 0, false
	}
	cl.tokenThrottleN--
	return cl.tokenThrottleS, true
}
