package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestWaitCondition(t *testing.T) {
	api := func(code int, errCode jetstream.ErrorCode) error {
		return fmt.Errorf("dispatcher: provision bucket x: %w", &jetstream.APIError{Code: code, ErrorCode: errCode, Description: "…"})
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"request timeout", fmt.Errorf("provision bucket orgdispatch_replicas: %w", context.DeadlineExceeded), condNoAnswer},
		{"no responders", fmt.Errorf("x: %w", nats.ErrNoResponders), condNoAnswer},
		{"nats timeout", fmt.Errorf("x: %w", nats.ErrTimeout), condNoAnswer},
		{"temporarily unavailable", api(503, 10008), condUnavailable},
		{"not leader", api(500, 10009), condUnavailable},
		{"no suitable peers", api(400, 10005), condNoPeers},
		{"stream created meanwhile", api(400, jetstream.JSErrCodeStreamNameInUse), condRace},
		{"consumer created meanwhile", api(400, jetstream.JSErrCodeConsumerExists), condRace},
		{"disconnected", fmt.Errorf("x: %w", nats.ErrDisconnected), condNoConn},
		{"consumer storage", &ConsumerStorageError{Stream: "S", Consumers: []string{"c"}}, ""},
		{"server refuses the config", api(500, 10074), ""},
		{"invalid tenant", errors.New(`dispatcher: provision: invalid tenant id "a b"`), ""},
	} {
		if got := waitCondition(tc.err); got != tc.want {
			t.Errorf("%s: waitCondition(%v) = %q, want %q", tc.name, tc.err, got, tc.want)
		}
	}
}
