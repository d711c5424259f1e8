// Package worker is orgdispatch's consumer side: a Pool runs one lane per
// tenant on each worker replica, pulls the tenant's jobs from its durable
// JetStream consumer, sends them to the platform with the tenant's own OAuth
// client and rate limiter, and settles each delivery once: ack, delayed retry
// (exponential backoff with full jitter), hand-back that does not use up an
// attempt, or dead letter.
//
// # Lanes
//
// A lane is one tenant on one replica: its own platform.Client (one token),
// its own rate.Limiter (the tenant's quota; for quota_scope org divided by
// the live replicas, learnt from heartbeats in the replicas bucket), its own
// concurrency, and its own knowledge of the tenant's pause. Every platform
// request passes the lane's gate (platform.Config.BeforeRequest): refused
// while the tenant is paused or the lane parked, then the limiter, then the
// pause is checked again. Lanes share nothing, so one tenant's 429s, slow
// answers or revoked credentials never delay another's requests.
//
// # Pauses
//
// A 429 pauses its tenant on every replica at once: the lane pauses locally,
// then pauses the tenant's consumer with the JetStream consumer pause API
// (dispatcher.Pause), and the server stops delivering the tenant's jobs to
// every replica. The server's pause advisories tell the other replicas, whose
// gates then hand back what they hold; after a reconnect every lane re-reads
// its consumer. Pauses merge "later wins"; an operator's Resume ends one
// early. After a pause the limiter is emptied so the lane restarts gently.
//
// # The attempt budget
//
// JetStream counts deliveries (NumDelivered) but a job's budget must ignore
// the deliveries that were handed back without trying (429, pause, rejected
// credentials, shutdown). The status record keeps their count
// (dispatcher.JobStatus.FreeDeliveries) and attempt = deliveries − free. The
// first delivery has none, so the common path reads nothing; a redelivery
// reads the record once. A hand-back increments the count with a
// read-modify-write that completes before the Nak, so the next delivery —
// on any replica — sees it; a slow or failing write is tried again (the job
// held in progress) rather than the Nak going out uncounted.
//
// # Status and events
//
// Status records (running, retrying, succeeded, dead) are written off the
// jobs' path by one writer per lane (so per tenant: one tenant's burst never
// queues another's records) that coalesces by key and pipelines its writes;
// the records that a later delivery relies on (hand-backs, retries) go
// through the same writer synchronously, in order with what is queued for
// their key, with a compare-and-set, and never over a record of a later
// delivery (dispatcher.JobStatus.Seq, Delivery).
//
// # Parking
//
// A lane parked on this replica (credentials rejected here, token endpoint
// unreachable from here) stops pulling, hands back what it holds at once,
// and probes with token fetches on its own backoff; its heartbeat lists the
// tenant as parked so that the other replicas take the tenant's whole
// org-scoped quota meanwhile (see parking.go).
//
// # Logs under faults
//
// Each lane logs a fault condition (parked, pulls, status writes, naks,
// acks, retries) once when it begins and sums it up when it clears or once
// a minute (internal/condlog), rather than once per job. Outcome events are core NATS messages on
// Names.EventSubject(tenant, outcome). Dead letters are stored (and acked by
// the stream) before the job is terminated; if that fails the job is handed
// back instead: nothing is lost.
//
// # Shutdown
//
// Run's context ends it in two phases: lanes stop pulling and hand back
// what they buffered, jobs in flight get Config.ShutdownTimeout to finish,
// the rest are cancelled (context.WithCancelCause) and handed back with an
// immediate Nak for another replica.
package worker
