package faultsuite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// deadLetters reads the dead-letter stream as it grows: which job ids of
// which tenant were dead-lettered.
type deadLetters struct {
	js    jetstream.JetStream
	names dispatcher.Names
	next  uint64                     // next sequence to read
	ids   map[string]map[string]bool // tenant → job ids
}

func newDeadLetters(js jetstream.JetStream, names dispatcher.Names) *deadLetters {
	return &deadLetters{js: js, names: names, next: 1, ids: map[string]map[string]bool{}}
}

// update reads the messages stored since the last call.
func (d *deadLetters) update(ctx context.Context) error {
	s, err := d.js.Stream(ctx, d.names.DLQStream())
	if err != nil {
		return fmt.Errorf("faultsuite: dead-letter stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("faultsuite: dead-letter stream info: %w", err)
	}
	for ; d.next <= info.State.LastSeq; d.next++ {
		m, err := s.GetMsg(ctx, d.next)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("faultsuite: dead letter %d: %w", d.next, err)
		}
		tenant := m.Header.Get(dispatcher.HeaderTenant)
		id := m.Header.Get(dispatcher.HeaderJobID)
		if id == "" {
			var body struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(m.Data, &body)
			id = body.ID
		}
		if d.ids[tenant] == nil {
			d.ids[tenant] = map[string]bool{}
		}
		d.ids[tenant][id] = true
	}
	return nil
}

// has reports whether tenant's job id was dead-lettered.
func (d *deadLetters) has(tenant, id string) bool { return d.ids[tenant][id] }
