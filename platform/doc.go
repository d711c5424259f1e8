// Package platform is orgdispatch's client for the Genesys Cloud Platform API:
// it turns a job's operation (campaign.start, contacts.add, api.request, …)
// into HTTP requests for one org, and the platform's answer into a Result or
// one typed error, classified once, here, so the worker can act on it in one
// errors.As switch.
//
// # Operations
//
// ValidateParams checks an operation's params without any I/O (the
// dispatcher calls it before publishing, the worker again before sending);
// Client.Do validates, sends and classifies:
//
//	campaign.start     {campaign_id}          POST   /api/v2/outbound/campaigns/{id}/start
//	campaign.stop      {campaign_id}          POST   /api/v2/outbound/campaigns/{id}/stop
//	campaign.get       {campaign_id}          GET    /api/v2/outbound/campaigns/{id}
//	campaign.progress  {campaign_id}          GET    /api/v2/outbound/campaigns/{id}/progress
//	campaign.stats     {campaign_id}          GET    /api/v2/outbound/campaigns/{id}/stats
//	campaign.set_status {campaign_id, status} GET the campaign, set campaignStatus, PUT it back
//	contacts.add       {contact_list_id, contacts:[{id?, data, callable?}], priority?, clear_system_data?, do_not_queue?}
//	                                          POST   /api/v2/outbound/contactlists/{id}/contacts
//	contacts.remove    {contact_list_id, contact_ids}
//	                                          DELETE /api/v2/outbound/contactlists/{id}/contacts?contactIds=a,b,c
//	api.request        {method, path, query?, body?}
//
// Campaign and contact list ids are 1–64 of A–Z a–z 0–9 '-' and contact ids
// 1–64 of A–Z a–z 0–9 - _ . ~, so no id can change a request's path or split
// the contactIds list. campaign.set_status accepts "on" and "off" — the only
// statuses the platform lets callers set; the PUT keeps the campaign's
// version, and a 409 (someone changed the campaign in between) is retried once
// with a fresh GET. contacts.add takes 1–1000 contacts (callable defaults to
// true), contacts.remove 1–100 ids. Bodies are at most 512,000 bytes, the
// platform's limit. api.request paths must be plain, clean absolute paths
// under an allow-list of prefixes (Config.AllowedPathPrefixes, by default the
// outbound API): no URLs, no "..", no encoded separators (see
// ValidateAPIRequestPath).
//
// # Classification
//
//	2xx                          *Result (body capped at MaxResponseBytes, rate-limit headers parsed)
//	429                          *RateLimitError: RetryAfter from Retry-After (seconds, or an HTTP date
//	                             relative to the answer's Date header), else inin-ratelimit-reset + 1 s,
//	                             else DefaultRetryAfter; bounded to [1 s, MaxRetryAfter]
//	401                          *AuthError (the refused token is forgotten; the caller retries once)
//	other 4xx, 3xx               *PermanentError with the platform's code, message, contextId and body
//	5xx, 408, timeout,           *TransientError (Status 0 when there was no answer)
//	  refused or reset connection
//	token endpoint failure       *TokenError: Rejected for a 400/401/403 (bad credentials), else not
//	invalid params               *InvalidRequestError, nothing sent
//	caller's ctx canceled        an error wrapping context.Canceled (and the cancel cause) and none of
//	                             the above, so a shutdown is never mistaken for a platform failure
//
// A passed ctx deadline, by contrast, is a timeout like any other: a
// *TransientError (or *TokenError) that wraps context.DeadlineExceeded.
//
// # Tokens
//
// Each Client holds one client-credentials token (golang.org/x/oauth2,
// client id and secret in a Basic Authorization header, as Genesys requires),
// fetched on first use, shared by concurrent callers (one fetch for all of
// them), replaced TokenRefreshAhead before it expires — or, if that refresh
// fails, kept until it really expires — and forgotten by DropToken or after a
// 401. The client secret never appears in an error: oauth2's error carries the
// token endpoint's whole answer, of which only the status and the OAuth error
// code are kept.
//
// # Why not the official Go SDK
//
// platform-client-sdk-go retries 429s with a fixed sleep and, once it gives
// up, returns a nil response whose headers are lost; when re-authentication
// fails its automatic refresh calls panic, so one revoked customer client
// would take the whole multi-tenant process down; and its configuration is a
// process-wide singleton. orgdispatch needs a client per tenant and full
// control of 429 handling (the tenant's pause is cluster-wide), so it calls
// the REST API directly with net/http and golang.org/x/oauth2.
package platform
