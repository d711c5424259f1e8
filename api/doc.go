// Package api is orgdispatch's HTTP API: job ingest, tenant and dead-letter
// administration, Prometheus metrics, health probes and the dashboard; and
// Client, the Go client the admin CLI (orgdispatch status, pause, resume,
// dlq) is built on.
//
// Every answer is JSON (except /metrics and the dashboard). Errors are
// {"error": "..."} (see ErrorResponse), never with a secret in them.
//
// # Authentication and scopes
//
// Config.Token (ORGDISPATCH_API_TOKEN) is one token with every right on
// every tenant. Config.Tokens (ORGDISPATCH_API_TOKENS_FILE, see LoadTokens;
// reloaded by a TokensWatcher) adds named tokens, each limited to some
// tenants and some rights: publish (POST /v1/jobs), read (GET tenants, jobs,
// dead letters, audit), pause (pause, resume), dlq (replay, delete),
// metrics (/metrics when Config.MetricsAuth). With either set, every /v1
// request needs "Authorization: Bearer <token>"; without it, or with an
// unknown token, the answer is 401 with a WWW-Authenticate: Bearer
// challenge; a token used beyond its scope gets 403 (another tenant's job
// or dead letter by id: 404). Listings show only the token's tenants.
// Tokens are compared in constant time; a placeholder token
// (REPLACE-WITH…) is refused at start. With no token at all /v1 is open,
// and Run listens on loopback addresses only (CheckListen) unless
// Config.AllowInsecure. /healthz, /readyz and the dashboard need no token;
// /metrics needs one only with Config.MetricsAuth.
//
// # Cross-site requests
//
// Token or not, the server answers only the Host names of Config.Hosts
// (ORGDISPATCH_HTTP_HOSTS; loopback names by default; IP addresses always),
// else 421, so a DNS-rebinding page gets nothing; and it takes a write (any
// method but GET and HEAD) only with Content-Type: application/json (every
// POST, even without a body; else 415) and, from a browser, only from its
// own origin (Origin and Sec-Fetch-Site; else 403). It sends no CORS
// headers.
//
// # Endpoints
//
//	POST   /v1/jobs                 one job envelope, or an array of them
//	GET    /v1/jobs/{id}            status of every tenant's job with this id
//	GET    /v1/tenants              every tenant's status
//	GET    /v1/tenants/{id}         one tenant's status
//	POST   /v1/tenants/{id}/pause   pause a tenant cluster-wide
//	POST   /v1/tenants/{id}/resume  end a tenant's pause
//	GET    /v1/dlq                  list dead letters (?tenant=&limit=&after=)
//	GET    /v1/dlq/{seq}            one dead letter
//	POST   /v1/dlq/{seq}/replay     publish a dead letter's job again, then delete it
//	DELETE /v1/dlq/{seq}            delete a dead letter
//	GET    /v1/audit                the audit trail (?tenant=&limit=&after=)
//	GET    /metrics                 Prometheus text format (see package metrics)
//	GET    /healthz                 200 {"status":"ok"} while the process runs
//	GET    /readyz                  200 {"status":"ready"} when NATS is connected and the streams
//	                                and buckets exist; else 503 {"error":"not ready: ..."}
//	GET    /                        the dashboard (when Config.Dashboard is set)
//
// POST /v1/jobs takes one envelope or an array (at most MaxJobsPerRequest,
// body at most MaxBodyBytes: else 413). Each job must name its tenant, which
// must exist:
//
//	{"id":"c-42","tenant":"org_1","op":"campaign.start","params":{"campaign_id":"cmp-1"}}
//
// Every job is validated before any is published. Answers:
//
//	202 {"accepted":["c-42"],"duplicates":[]}
//	    duplicates: ids the jobs stream already held for that tenant (within
//	    its duplicate window); they are not run twice.
//	400 {"error":"2 of 3 jobs are invalid; none was published",
//	     "errors":[{"index":1,"id":"c-43","error":"invalid job: unknown op \"x\""}, ...]}
//	    also for a body that is not a job object or array: {"error":"malformed JSON: ..."}
//	413 {"error":"request body is larger than 8388608 bytes"}
//	503 {"error":"NATS did not take job 2 (c-44): ... full ...; 2 published before it, 1 not published",
//	     "errors":[{"index":2,"id":"c-44","error":"..."}],
//	     "accepted":["c-42","c-43"],"duplicates":[],"not_published":["c-44"]}
//	    with Retry-After: 1. Jobs are published in order: accepted and
//	    duplicates list those before the failure, not_published the rest.
//	    Publishing the whole request again is safe (ids deduplicate).
//
// POST /v1/jobs?admission=deadline adds drain-time admission: every job
// needs a deadline (else 400, nothing published), and the first job its
// tenant would not finish by it — given the rest of a pause and the jobs
// ahead of it in its class, at the tenant's current rate shared by weight
// between the classes — is refused, it and the rest not published:
//
//	422 {"error":"deadline cannot be met at job 0 (b7): ... estimated done in 1m40s ...",
//	     "deadline_unreachable":{"tenant":"org_1","job_id":"b7","priority":"bulk",
//	       "deadline":"...Z","at":"...Z","estimate_seconds":100,"estimated_done":"...Z",
//	       "ahead":99,"rate_per_sec":1,"pause_remaining_seconds":0},
//	     "accepted":[],"not_published":["b7"]}
//
// (estimate_seconds null: no lane can run the tenant's jobs now). Client's
// SubmitJobsWithinDeadline returns it as an *Error that unwraps to a
// *dispatcher.DeadlineUnreachableError.
//
// GET /v1/jobs/{id} → 200 {"id":"c-42","jobs":[JobStatus...]} (sorted by
// tenant), or 404. A JobStatus (dispatcher.JobStatus) is
//
//	{"id":"c-42","tenant":"org_1","op":"campaign.start","state":"queued|running|retrying|succeeded|dead",
//	 "attempts":1,"http_status":200,"error":"...","updated":"2026-01-02T03:04:05Z", ...}
//
// GET /v1/tenants → 200
//
//	{"tenants":[TenantStatus...],"now":"2026-01-02T03:04:05.123Z","dispatchable_backlog":12,
//	 "scalable_backlog":0,"replicas_wanted":1}
//
// (tenants sorted by id; now is the server's clock; dispatchable_backlog is
// the backlog of tenants that are not paused, scalable_backlog and
// replicas_wanted the scaling signal: dispatcher.ScalingSignal). GET /v1/tenants/{id} → 200
// TenantStatus, or 404 {"error":"tenant not found"}. A TenantStatus
// (dispatcher.TenantStatus) is
//
//	{"id":"org_1",
//	 "state":"running",                 running | paused | credentials rejected |
//	                                    token endpoint unavailable | stopped | no workers
//	 "paused":true,                     the consumer is paused (cluster-wide)
//	 "paused_until":"...Z",             only when paused
//	 "pause_remaining_seconds":42.5,    only when paused
//	 "pause_reason":"429 from platform, Retry-After 1m0s", "paused_by":"replica-1" or "api",
//	 "backlog":12, "in_flight":2, "concurrency":4,
//	 "rate_per_sec":5, "done_per_sec":4.8,        summed over live worker replicas
//	 "succeeded":100, "retried":3, "dead":1, "rate_limited":2,   counters since each replica started
//	 "last_error":"...", "last_error_at":"...Z",  the latest over replicas, when any;
//	                                    on one line, at most 512 bytes (cut with "…")
//	 "replicas":2,                      live replicas running a lane for it
//	 "classes":[{"priority":"urgent","backlog":3,"drain_seconds":4.57}, normal, bulk],
//	                                    jobs held by class; when a new job of it would be done
//	 "drain_rate_per_sec":1, "drain_rate_basis":"lanes",  lanes | configured | none
//	 "drain_seconds":12,                until every job held is done (null: no rate)
//	 "saturated":false, "replicas_wanted":1}   see dispatcher.TenantDrain
//
// POST /v1/tenants/{id}/pause with {"duration":"90s","reason":"maintenance"}
// (duration required, a Go duration, more than 0 and at most MaxPause,
// default 24h; reason optional, at most 256 bytes) → 200 TenantStatus
// (paused, paused_by "api"); 400 for a bad body or duration; 404 for an
// unknown tenant. POST /v1/tenants/{id}/resume (no body) → 200 TenantStatus;
// 404 for an unknown tenant.
//
// GET /v1/dlq?tenant=org_1&limit=50&after=0 (all optional; limit 1-500,
// default 50; after: a sequence to page on from) → 200
//
//	{"dead_letters":[DeadLetter...],"next_after":17}
//
// oldest first; pass next_after as after for the next page; an empty page is
// the end. 400 for a bad tenant id, limit or after. A DeadLetter
// (dispatcher.DeadLetter) is
//
//	{"seq":17,"subject":"orgdispatch.dlq.org_1.campaign.start","tenant":"org_1","op":"campaign.start",
//	 "job_id":"c-42","error_class":"invalid|permanent|exhausted|expired","error":"...",
//	 "http_status":404,"attempts":3,"first_attempt":"...Z","last_attempt":"...Z","dead_at":"...Z",
//	 "body":"{\"id\":\"c-42\",...}","body_bytes":120,"body_truncated":false}
//
// (body is the original job, cut at 4 KiB). GET /v1/dlq/{seq} → 200
// DeadLetter or 404. POST /v1/dlq/{seq}/replay → 200
//
//	{"seq":17,"tenant":"org_1","op":"campaign.start","job_id":"c-42",
//	 "msg_id":"org_1:c-42:replay:17","job_seq":230,"duplicate":false}
//
// (the job is published again under a new message id, so the duplicate
// window does not swallow it, and the dead letter is deleted); 404 when
// there is no such dead letter; 422 when its body is not a valid job for
// its tenant (it is kept). DELETE /v1/dlq/{seq} → 204, or 404. A {seq} that
// is not a positive integer is 400.
//
// POST /v1/tenants/{id}/resume, POST /v1/dlq/{seq}/replay and DELETE
// /v1/dlq/{seq} take an optional ?reason= for the audit trail. Each pause,
// resume, replay and delete, and each refused request (rate-limited), is
// recorded (see dispatcher.AuditRecord). GET /v1/audit?tenant=&limit=&after=
// (limit 1-500, default 50) → 200
//
//	{"records":[{"seq":9,"time":"...Z","actor":"crm-eu","action":"pause","tenant":"org_1",
//	             "reason":"maintenance","detail":{"until":"...Z","duration":"5m0s"}}, ...],
//	 "next_after":9}
//
// without after: the latest records, newest first; with after: those after
// it, oldest first, next_after the after of the next page. A token of some
// tenants reads only theirs (without ?tenant=, those among the latest or
// next 500 records). GET /v1/dlq for a token of several tenants needs
// ?tenant=.
//
// Other errors: 404 {"error":"no such endpoint: ..."}, 405 with Allow for a
// wrong method, 503 {"error":"NATS unavailable: ..."} (Retry-After: 1) when
// NATS cannot answer, 500 otherwise.
package api
