// Package platformtest is an in-process simulator of the Genesys Cloud
// Platform API, for tests, benchmarks and the local stack (orgdispatch sim),
// the way net/http/httptest stands in for a web server.
//
// It serves the OAuth client-credentials token endpoint, the outbound
// endpoints the dispatcher calls (see the project's platform-facts notes)
// and the organization limits API from in-memory state kept per org,
// enforces fixed-window rate limits per bucket, and injects faults on
// demand. By default it behaves like today's platform: no
// inin-ratelimit-* headers (removed in 2021; Config.LegacyRateLimitHeaders
// brings them back), the normalized 429, and an ININ-Correlation-Id on
// every answer.
//
// NewServer runs it on 127.0.0.1 for one test; New returns the bare
// http.Handler (for an in-memory RoundTripper inside a testing/synctest
// bubble, or a real listener). It does not import the platform client, so
// it stays an independent statement of how the platform behaves.
//
// # Token endpoint
//
// POST /oauth/token takes the client-credentials grant: the client id and
// secret in an HTTP Basic Authorization header (the only client
// authentication accepted: client_id/client_secret form fields are refused),
// form body grant_type=client_credentials. It answers
// {"access_token","token_type":"bearer","expires_in"} with an opaque random
// token valid for Config.TokenTTL (expires_in rounded up to whole seconds).
// Errors use the platform's token error body
// {"error","description","error_description"}:
//
//   - missing, unknown or wrong credentials: 401 invalid_client (RFC 6749
//     §5.2 for a client that authenticated with the Authorization header;
//     community reports show the platform answering 401 as well),
//   - missing grant_type: 400 invalid_request; another grant:
//     400 unsupported_grant_type,
//   - SetTokenOutage(true): 503 temporarily_unavailable,
//   - ThrottleTokens: 429 with Retry-After and the normalized 429 body
//     (without a limit object), checked before the outage.
//
// # API requests
//
// Every request under /api/ is handled in this order:
//
//  1. Authentication: no bearer token → 401 authentication.required; an
//     unknown or expired token → 401 bad.credentials. Nothing after this
//     step happens for a 401, and a 401 carries no rate-limit headers.
//  2. Injected faults for the token's client: Throttle (the normalized
//     429), then FailNext or FailNextRetryAfter (any status). Then
//     Config.ErrorRatio (503, seeded). None of these uses up a window.
//  3. The rate-limit windows: the main one (when Limit > 0) and those of
//     the Config.EndpointLimits the path falls under; refused with 429 when
//     any is full.
//  4. The endpoint: 413 for a body over MaxBodyBytes, 404 for an unknown
//     path or id (unless Config.AutoCreate), 405 for a wrong method, 400 for
//     an invalid body or query, 409 for a stale campaign version, 400 for a
//     refused campaign status transition.
//
// Every answer, API or not and whatever its status, carries a fresh
// UUID-shaped ININ-Correlation-Id header; it is recorded as
// Request.CorrelationID. Errors use the standard body
// {"status","code","message","contextId","details":[],"errors":[]}, with
// the correlation id as contextId.
// Config.Latency is waited for after the answer is decided and before it
// is written (state changes happen on arrival); a caller that gives up
// meanwhile is recorded with Status 0.
//
// # Rate limits
//
// A bucket is a fixed window: it opens with the first request after the
// previous window ended and lasts Config.Window; up to Config.Limit
// requests are admitted in it. Requests refused with 429 do not count (the
// platform may count them; not counting keeps a client that honours
// Retry-After exactly on budget). Buckets belong to a token (ScopeToken, the
// default), a client (ScopeClient) or an org (ScopeOrg); Config.SharedBuckets
// puts several clients in one bucket whatever the scope, which reproduces
// the original report: one busy org starves the others.
//
// A full window answers the platform's normalized 429 (since 2021):
// Retry-After the whole seconds until the window resets (rounded up, at
// least 1) and the body
//
//	{"message":"Rate limit exceeded the maximum. Retry the request in [N] seconds",
//	 "code":"too.many.requests.retry.after","status":429,"contextId":"…",
//	 "details":[],"errors":[],
//	 "limit":{"key":"client.credentials.token.rate.per.minute","namespace":"platform.api","value":300}}
//
// where N is Retry-After and value is the limit per minute,
// round(Limit × 60 s / Window) — 50 per 10 s is 300. Config.OmitLimitInBody
// leaves the limit object out (the platform does not promise it).
//
// Config.EndpointLimits adds windows for families of endpoints (by path
// prefix), of the same scope as the main one; a request must be admitted by
// the main window and by each of them it falls under, and is counted in
// none if one refuses. A 429 names the refusing limit by its own key,
// namespace and per-minute value; when several refuse, the one whose window
// resets last (so that waiting out Retry-After is enough).
//
// With Config.LegacyRateLimitHeaders and Limit > 0, every API answer past
// authentication also carries inin-ratelimit-allowed (the limit),
// inin-ratelimit-count (requests counted in the main window, this one
// included) and inin-ratelimit-reset (whole seconds until it resets,
// rounded up), as the platform did until 2021.
//
// # Limits API
//
// GET /api/v2/organizations/limits/namespaces/{namespace} answers
// {"entities":[{"key","namespace","value"},…]}: the limits in force in
// namespace, per minute — in platform.api the main limit (none while Limit
// is 0: an empty list) and the endpoint limits of that namespace, in
// Config.EndpointLimits order. An unknown namespace is 404.
// GET /api/v2/organizations/limits/namespaces lists the namespaces as
// {"entities":[{"name"},…],"pageSize","pageNumber","total"}. Both are API
// requests like any other: authenticated, counted, refusable with 429.
//
// # Outbound model
//
// Each org has campaigns and contact lists. A campaign names a contact list
// (by default the one with its own id). Start (POST …/start) turns a
// campaign "on"; stop (POST …/stop) turns an "on" campaign "stopping", and
// it is "off" Config.StopDelay (2 s by default, on the simulator's clock)
// later; both answer 204 without a body. PUT may request "on" or "off"
// only, with the same effect (a PUT of "off" on an "on" campaign goes
// through "stopping" too), and accepts the query useMaxCallsPerAgentDecimal
// that Genesys's Terraform provider sends.
//
// Status changes follow the transitions that provider relies on: "off"
// only from "on"; "on" only from "off", "complete", "invalid" or
// "forced_off". Whether the platform refuses others is not documented, so
// by default the simulator is strict: anything else — a PUT or start of an
// "on" campaign, a stop of a "stopping" or "off" one, any change of a
// "stopping" one — is 400 bad.request naming both statuses.
// Config.LenientStatusTransitions accepts any requested status (start or
// stop of a campaign already there is then a no-op).
//
// PUT always bumps the version, start and stop when they change the
// status; the stopping→off transition does not. An "on" campaign dials one
// callable contact per second of the simulator's clock, which is what
// progress (numberOfContactsCalled of totalNumberOfContacts) and stats
// (three in five dialed contacts connect) report. Contact data maps column
// names to strings, as on the platform: any other JSON value is 400 naming
// the contact and the column.
//
// # Time
//
// Config.Now drives windows, token expiry, campaign state and Request.At,
// so tests advance a fake clock instead of sleeping. Latency alone uses a
// real timer (fake inside a testing/synctest bubble).
//
// # Inspection
//
// Requests returns the recorded requests (a ring of the latest
// Config.MaxRecorded, 100,000 by default; token requests included — filter
// with PathPrefix "/api/" for API requests only), Stats counts per client,
// and OnRequest observers see every request as it is answered. Per request
// the simulator does a token lookup, one per-bucket lock, one per-org lock
// and one append to the ring (a short global lock); nothing scans all
// requests.
package platformtest
