package dispatcher_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// startWithAuth starts a real nats-server from a config file that includes
// the accounts fragment WriteNATSAuth wrote, parsed by the server's own
// config loader.
func startWithAuth(t *testing.T, fragment []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "orgdispatch-accounts.conf"), fragment, 0o600); err != nil {
		t.Fatal(err)
	}
	main := "listen: 127.0.0.1:-1\njetstream { store_dir: " + `"` + filepath.Join(dir, "js") + `"` + " }\ninclude ./orgdispatch-accounts.conf\n"
	path := filepath.Join(dir, "nats-server.conf")
	if err := os.WriteFile(path, []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server rejects the generated config: %v\n%s", err, fragment)
	}
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return srv.ClientURL()
}

// conn connects as user, collecting the server's asynchronous errors
// (permission violations) on the returned channel.
func conn(t *testing.T, url, user, password string, opts ...nats.Option) (*nats.Conn, chan error) {
	t.Helper()
	errs := make(chan error, 16)
	opts = append(opts, nats.UserInfo(user, password), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

func waitViolation(t *testing.T, errs chan error, what string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Errorf("%s: async error %v, want a permissions violation", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s: no permissions violation from the server", what)
	}
}

// TestNATSAuthRefusesOtherTenants runs nats-server with the generated
// permissions: the producer of org_a publishes org_a's jobs (with a
// JetStream acknowledgement) and reads org_a's events, but is refused on
// org_b's job subjects, org_b's events, dead letters, the JetStream API and
// the shared inbox; the service user provisions and reads everything.
func TestNATSAuthRefusesOtherTenants(t *testing.T) {
	names := dispatcher.MustNames("")
	ts := []tenants.Tenant{{ID: "org_a", Concurrency: 1}, {ID: "org_b", Concurrency: 1}}
	var frag bytes.Buffer
	err := dispatcher.WriteNATSAuth(&frag, names, dispatcher.NATSAuthConfig{
		Producers: []dispatcher.Producer{{Name: "crm-a", Tenants: []string{"org_a"}}, {Name: "crm-b", Tenants: []string{"org_b"}}},
	}, []string{"org_a", "org_b"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(frag.String(), "svc-pass") {
		t.Fatal("the fragment holds a password")
	}
	t.Setenv(dispatcher.PasswordVar("orgdispatch"), "svc-pass-123")
	t.Setenv(dispatcher.PasswordVar("crm-a"), "crm-a-pass-456")
	t.Setenv(dispatcher.PasswordVar("crm-b"), "crm-b-pass-789")
	url := startWithAuth(t, frag.Bytes())

	svc, _ := conn(t, url, "orgdispatch", "svc-pass-123")
	sjs, err := jetstream.New(svc)
	if err != nil {
		t.Fatal(err)
	}
	if err := dispatcher.Provision(t.Context(), sjs, names, dispatcher.StreamConfig{}, ts); err != nil {
		t.Fatalf("the service user provisions: %v", err)
	}
	if _, err := sjs.Publish(t.Context(), names.DLQSubject("org_b", "campaign.start"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}

	if _, err := nats.Connect(url, nats.UserInfo("crm-a", "wrong")); err == nil {
		t.Error("crm-a connected with a wrong password")
	}
	pa, errs := conn(t, url, "crm-a", "crm-a-pass-456", nats.CustomInboxPrefix(dispatcher.InboxPrefix("crm-a")))
	pjs, err := jetstream.New(pa)
	if err != nil {
		t.Fatal(err)
	}
	pub := dispatcher.NewPublisher(pjs, names, dispatcher.WithConsumerBacklogCounts())
	job := func(tenant, id string) dispatcher.Job {
		return dispatcher.Job{ID: id, Tenant: tenant, Op: "campaign.start", Params: []byte(`{"campaign_id":"c1"}`)}
	}
	if _, err := pub.Publish(t.Context(), job("org_a", "a1")); err != nil {
		t.Fatalf("crm-a publishes for org_a: %v", err)
	}
	events, err := pa.SubscribeSync(names.EventSubject("org_a", "succeeded"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pa.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Fatalf("crm-a's allowed subscription was refused: %v", err)
	default:
	}
	if err := svc.Publish(names.EventSubject("org_a", "succeeded"), []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if _, err := events.NextMsg(5 * time.Second); err != nil {
		t.Errorf("crm-a reads org_a's events: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := pub.Publish(ctx, job("org_b", "b1")); err == nil {
		t.Error("crm-a published for org_b")
	}
	waitViolation(t, errs, "publish to org_b's jobs")
	for _, subj := range []string{names.EventSubject("org_b", "succeeded"), names.TenantDLQFilter("org_b"), names.DLQSubjects(), "_INBOX.>", names.AuditSubjects(), "$JS.API.>"} {
		if _, err := pa.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
		if err := pa.Flush(); err != nil {
			t.Fatal(err)
		}
		waitViolation(t, errs, "subscribe to "+subj)
	}
	// No JetStream API: it cannot read the dead-letter stream either.
	ctx2, cancel2 := context.WithTimeout(t.Context(), time.Second)
	defer cancel2()
	if s, err := pjs.Stream(ctx2, names.DLQStream()); err == nil {
		if _, err := s.GetMsg(ctx2, 1); err == nil {
			t.Error("crm-a read a dead letter")
		}
	}
	waitViolation(t, errs, "JetStream API")

	st, err := sjs.Stream(t.Context(), names.JobsStream("org_b"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetLastMsgForSubject(t.Context(), names.JobSubject("org_b", "campaign.start")); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("org_b has a job from crm-a: %v", err)
	}
	sta, err := sjs.Stream(t.Context(), names.JobsStream("org_a"))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := sta.GetLastMsgForSubject(t.Context(), names.JobSubject("org_a", "campaign.start")); err != nil || !bytes.Contains(m.Data, []byte(`"a1"`)) {
		t.Errorf("org_a's job: %v", err)
	}

	// crm-b, the mirror image, publishes for org_b.
	pb, _ := conn(t, url, "crm-b", "crm-b-pass-789", nats.CustomInboxPrefix(dispatcher.InboxPrefix("crm-b")))
	bjs, _ := jetstream.New(pb)
	if _, err := dispatcher.NewPublisher(bjs, names, dispatcher.WithConsumerBacklogCounts()).Publish(t.Context(), job("org_b", "b2")); err != nil {
		t.Errorf("crm-b publishes for org_b: %v", err)
	}

	// The status bucket: crm-a reads its own tenant's job records, not
	// org_b's.
	kv, err := pjs.KeyValue(t.Context(), names.StatusBucket())
	if err != nil {
		t.Fatalf("crm-a binds the status bucket: %v", err)
	}
	if e, err := kv.Get(t.Context(), dispatcher.StatusKey("org_a", "a1")); err != nil || !bytes.Contains(e.Value(), []byte("queued")) {
		t.Errorf("crm-a reads org_a's job status: %v", err)
	}
	ctx3, cancel3 := context.WithTimeout(t.Context(), time.Second)
	defer cancel3()
	if _, err := kv.Get(ctx3, dispatcher.StatusKey("org_b", "b2")); err == nil {
		t.Error("crm-a read org_b's job status")
	}
	waitViolation(t, errs, "read org_b's job status")
}

func TestWriteNATSAuthValidates(t *testing.T) {
	names := dispatcher.MustNames("")
	for _, c := range []struct {
		name string
		cfg  dispatcher.NATSAuthConfig
		want string
	}{
		{"no producers", dispatcher.NATSAuthConfig{}, "no producers"},
		{"unknown tenant", dispatcher.NATSAuthConfig{Producers: []dispatcher.Producer{{Name: "p", Tenants: []string{"org_z"}}}}, `"org_z" is not in the tenants file`},
		{"bad name", dispatcher.NATSAuthConfig{Producers: []dispatcher.Producer{{Name: "P Q", Tenants: []string{"org_a"}}}}, "want 1-32"},
		{"twice", dispatcher.NATSAuthConfig{Producers: []dispatcher.Producer{{Name: "p", Tenants: []string{"org_a"}}, {Name: "p", Tenants: []string{"org_a"}}}}, "used twice"},
		{"service user", dispatcher.NATSAuthConfig{Producers: []dispatcher.Producer{{Name: "orgdispatch", Tenants: []string{"org_a"}}}}, "used twice"},
		{"no tenants", dispatcher.NATSAuthConfig{Producers: []dispatcher.Producer{{Name: "p"}}}, "no tenants"},
	} {
		err := dispatcher.WriteNATSAuth(&bytes.Buffer{}, names, c.cfg, []string{"org_a"})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
