// Package bench runs orgdispatch's benchmark scenarios (isolation,
// utilization, pause, overhead, scale, flood) against an in-process platform
// simulator served over real HTTP on 127.0.0.1 and an embedded JetStream
// server with file storage in a temporary directory. The scale and flood
// scenarios can instead run on an embedded loopback cluster or an external
// server or cluster, under a NATS name prefix of their own.
//
// Every scenario measures its own baseline in the same run, states the
// machine and the (time-compressed) quotas it used, prints a table, returns
// the same figures as a Report that encodes to JSON, and marks each target
// met or missed from the measured figures alone. See docs/benchmarks.md.
package bench
