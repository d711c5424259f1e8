package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// noMetadata is a real delivery whose metadata cannot be read.
type noMetadata struct{ jetstream.Msg }

func (noMetadata) Metadata() (*jetstream.MsgMetadata, error) {
	return nil, errors.New("metadata unreadable")
}

// A delivery without readable metadata is dead-lettered before it is
// terminated: a Term without a stored dead letter would lose the job.
func TestDeliveryWithoutMetadataIsDeadLettered(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "org_a")
	ta := e.tenant("org_a", nil)
	e.provision(ta)
	p, err := New(e.config("r1", nil, ta))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := e.js.KeyValue(ctx, e.names.StatusBucket())
	if err != nil {
		t.Fatal(err)
	}
	p.lane("org_a").status = newStatusWriter(e.js, kv, e.names.StatusBucket(), "org_a", p.log, nil)

	e.publish("org_a", getJob("j1", "c1"))
	cons, err := e.js.Consumer(ctx, e.names.JobsStream("org_a"), e.names.Consumer("org_a"))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg, ok := <-batch.Messages()
	if !ok {
		t.Fatalf("no job delivered: %v", batch.Error())
	}

	l := p.lane("org_a")
	l.handle(noMetadata{msg}, l.pullers[dispatcher.PriorityNormal.Index()])

	dl := e.deadLetter("org_a", "campaign.get")
	if string(dl.Data) != string(msg.Data()) {
		t.Errorf("dead letter body %q, want the job's %q", dl.Data, msg.Data())
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 {
		t.Errorf("job not settled after its dead letter: %d ack pending, %d pending", info.NumAckPending, info.NumPending)
	}
}
