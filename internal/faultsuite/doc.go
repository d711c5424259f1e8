// Package faultsuite runs orgdispatch under load as real processes and
// injects faults: it SIGKILLs worker replicas, serve and nats-servers (a
// single server or one node of a 3-node JetStream cluster with R3 streams),
// storms one tenant with 5xx answers, makes the token endpoint unreachable
// for one replica, and revokes one tenant's credentials. Each run reports,
// per tenant, the jobs published, succeeded, dead-lettered and lost, the
// duplicates, the longest stall of the tenant's successful platform calls
// and the time the tenant took to recover from the fault.
//
// The pieces are real: nats-server built from the module go.mod requires,
// orgdispatch built from this module, each started
// as its own process group on loopback; jobs are published with nats.go to
// orgdispatch.jobs.<tenant>.<op> with Nats-Msg-Id <tenant>:<id>, as any
// producer would. The platform is the in-process simulator
// (platform/platformtest) served over HTTP on 127.0.0.1, so that every
// request the orgdispatch processes make is seen through its OnRequest
// hook: a job's id is its campaign id, and a 2xx for a campaign's start is
// that job's success at the platform.
//
// Run runs one Scenario with a Config and returns its Result; the tests of
// this package run short versions in CI and `orgdispatch bench faults`
// runs them all with longer durations (see docs/reliability.md).
package faultsuite
