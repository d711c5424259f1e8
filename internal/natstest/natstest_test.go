package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunServer(t *testing.T) {
	var nc *nats.Conn
	var url string
	t.Run("inner", func(t *testing.T) {
		srv, c, js := RunServer(t)
		nc, url = c, srv.ClientURL()
		if url == "" {
			t.Fatal("server does not listen")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
			t.Fatal(err)
		}
		ack, err := js.Publish(ctx, "s", []byte("x"))
		if err != nil || ack.Sequence != 1 {
			t.Fatalf("Publish = %+v, %v", ack, err)
		}
	})
	if !nc.IsClosed() {
		t.Error("connection still open after the test's cleanup")
	}
	if c, err := nats.Connect(url, nats.Timeout(time.Second)); err == nil {
		c.Close()
		t.Error("server still accepting connections after the test's cleanup")
	}
}

func TestRunServerIsolated(t *testing.T) {
	_, _, js1 := RunServer(t)
	_, _, js2 := RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js1.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js2.Stream(ctx, "S"); err == nil {
		t.Fatal("a stream created on one test server is visible on another")
	}
}
