package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/internal/condlog"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// Backoff between provisioning attempts: doubling from provisionRetryBase
// up to provisionRetryMax, jittered so that replicas starting together do
// not keep asking together.
const (
	provisionRetryBase = 250 * time.Millisecond
	provisionRetryMax  = 5 * time.Second
)

// Conditions ProvisionWhenReady waits out, as logged (once each).
const (
	condNoAnswer    = "NATS JetStream does not answer yet (no meta leader: cluster still forming?); provisioning waits and retries"
	condUnavailable = "NATS JetStream is temporarily unavailable (cluster still forming or electing a leader); provisioning waits and retries"
	condNoPeers     = "not enough JetStream servers yet for the configured stream replicas (ORGDISPATCH_STREAM_REPLICAS); provisioning waits and retries"
	condRace        = "another replica is provisioning the same streams or consumers; retrying"
	condNoConn      = "not connected to NATS; provisioning waits and retries"
)

// ProvisionWhenReady runs Provision until it succeeds, for processes that
// start together with their NATS cluster (a fresh cluster's servers and
// every orgdispatch replica at once): while JetStream cannot answer yet (no
// meta leader, too few servers for the replicas, a leader election, a
// dropped connection) it waits with backoff and tries again, and when
// another replica provisions at the same moment it goes on from what that
// one created. Each condition is logged once, at Warn, when it is first
// met, and summed up (how often, first and last) once provisioning
// succeeds; not once per attempt.
//
// It returns nil once everything is provisioned, an error the operator can
// act on (a tenant that cannot be provisioned, a consumer storage change, a
// configuration the server refuses) at once, or the last error when ctx
// ends first.
func ProvisionWhenReady(ctx context.Context, js jetstream.JetStream, names Names, cfg StreamConfig, ts []tenants.Tenant, logger *slog.Logger) error {
	cond := condlog.New(condlog.Config{Logger: logger})
	var met []string
	for attempt := 1; ; attempt++ {
		err := Provision(ctx, js, names, cfg, ts)
		if err == nil {
			for _, c := range met {
				cond.Clear("", c)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (gave up waiting: %w)", err, context.Cause(ctx))
		}
		c := waitCondition(err)
		if c == "" {
			return err
		}
		if !slices.Contains(met, c) {
			met = append(met, c)
		}
		cond.Report(slog.LevelWarn, "", c, "attempt", attempt, "error", err.Error())
		t := time.NewTimer(provisionBackoff(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up waiting: %w)", err, context.Cause(ctx))
		}
	}
}

// provisionBackoff is the wait after attempt failed: half the ceiling plus
// a random part of the other half.
func provisionBackoff(attempt int) time.Duration {
	ceil := provisionRetryMax
	if attempt < 8 {
		ceil = min(provisionRetryBase<<(attempt-1), provisionRetryMax)
	}
	return ceil/2 + rand.N(ceil/2+1)
}

// waitCondition says which transient condition err shows, or "" when it is
// none: then the operator must act, and waiting would only hide it.
func waitCondition(err error) string {
	var cse *ConsumerStorageError
	if errors.As(err, &cse) {
		return ""
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jsErrCodeClusterNoPeers:
			return condNoPeers
		case jsErrCodeClusterNotLeader:
			return condUnavailable
		case jetstream.JSErrCodeStreamNameInUse, jetstream.JSErrCodeConsumerExists,
			jetstream.JSErrCodeConsumerAlreadyExists, jetstream.JSErrCodeConsumerNameExists:
			// Created by another replica between our look and our create:
			// the next attempt updates it, and fails if it really differs.
			return condRace
		}
		if apiErr.Code == 503 {
			return condUnavailable
		}
		return ""
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders):
		return condNoAnswer
	case errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionReconnecting):
		return condNoConn
	}
	return ""
}

// jsErrCodeClusterNoPeers is nats-server's JSClusterNoPeersErr ("no
// suitable peers for placement"): fewer JetStream servers than the stream's
// replicas, as while a cluster forms. nats.go has no constant for it.
const jsErrCodeClusterNoPeers jetstream.ErrorCode = 10005

// jsErrCodeClusterNotLeader is nats-server's JSClusterNotLeaderErr
// ("JetStream cluster can not handle request"), answered during a leader
// change.
const jsErrCodeClusterNotLeader jetstream.ErrorCode = 10009
