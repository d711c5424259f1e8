// Package dispatcher is orgdispatch's producer side and its NATS layout: the
// job envelope and its validation, the subjects, streams, consumers and
// buckets (Names, Provision), the Publisher that queues jobs, and the
// cluster-wide tenant pause (Pause, Resume).
//
// Jobs travel on orgdispatch.jobs.<tenant>.<op> into their tenant's work-queue
// stream, one of JobShards (ORGDISPATCH_JOBS_00 …, by ShardOf), which listens
// on its configured tenants' subjects only; each tenant has one durable pull
// consumer that every
// worker replica binds, so a tenant's jobs are shared among replicas. Each
// replica's lane runs at most the tenant's concurrency at once; the consumer's
// MaxAckPending (ConsumerMaxAckPending) is far above it, so jobs waiting out a
// delay never hold the tenant's other jobs back.
//
// Delayed and recurring jobs (Schedules) are kept by nats-server's message
// scheduler in the schedules stream (SchedulesStream), which every jobs
// stream sources: a fired job is queued like any other.
package dispatcher
