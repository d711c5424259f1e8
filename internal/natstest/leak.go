package natstest

import "go.uber.org/goleak"

// LeakOptions are the goleak options of packages whose tests run servers
// with sourcing streams (the jobs streams source the schedules stream).
// nats-server's setup of a source consumer waits up to 30 s for the
// consumer's answer in a goroutine that its Shutdown does not stop: one
// shut down in that moment leaves it behind until its timer fires.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*stream).trySetupSourceConsumer.func3"),
	}
}
