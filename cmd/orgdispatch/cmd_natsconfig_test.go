package main

import (
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

// TestNATSConfigCommand: nats-config prints an accounts fragment that
// nats-server's own config loader accepts, with each producer's publish
// permissions limited to its tenants and no password in it.
func TestNATSConfigCommand(t *testing.T) {
	tf := filepath.Join(t.TempDir(), "tenants.yaml")
	doc := "tenants:\n  - {id: org_1, client_id: c1, client_secret_env: ORG1_SECRET_NOT_SET}\n  - {id: Org_2, client_id: c2, client_secret_file: /nonexistent}\n"
	if err := os.WriteFile(tf, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	onlyEnv(t, map[string]string{"ORGDISPATCH_TENANTS_FILE": tf, "ORGDISPATCH_PREFIX": "acme"})
	for _, c := range []struct {
		args  []string
		users []string
		want  []string
	}{
		{nil, []string{"org_1", "org_2"}, []string{`"acme.jobs.org_1.>"`, `"acme.jobs.Org_2.>"`, `"_INBOX_org_1.>"`, "$NATS_PASSWORD_ORG_1"}},
		{[]string{"--producer", "crm=org_1,Org_2", "--producer", "erp=Org_2"}, []string{"crm", "erp"}, []string{`"acme.events.Org_2.>"`, "$NATS_PASSWORD_ERP"}},
	} {
		code, out, errs := runCLI(t, append([]string{"nats-config"}, c.args...)...)
		if code != 0 {
			t.Fatalf("nats-config %v: %d %s", c.args, code, errs)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("nats-config %v: no %s in\n%s", c.args, w, out)
			}
		}
		dir := t.TempDir()
		for _, u := range append(c.users, "orgdispatch") {
			t.Setenv("NATS_PASSWORD_"+strings.ToUpper(strings.ReplaceAll(u, "-", "_")), "pw-"+u)
		}
		path := filepath.Join(dir, "server.conf")
		if err := os.WriteFile(path, []byte("jetstream { store_dir: \""+dir+"\" }\n"+out), 0o600); err != nil {
			t.Fatal(err)
		}
		opts, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatalf("nats-server rejects the output: %v\n%s", err, out)
		}
		got := map[string][]string{}
		for _, u := range opts.Users {
			if u.Password != "pw-"+u.Username {
				t.Errorf("user %s: password not from the environment", u.Username)
			}
			if u.Permissions != nil {
				got[u.Username] = u.Permissions.Publish.Allow
			}
		}
		for _, u := range c.users {
			if len(got[u]) == 0 {
				t.Errorf("user %s has no publish permissions: %v", u, got)
			}
		}
	}
	if code, out, errs := runCLI(t, "nats-config", "--producer", "x=org_9"); code == 0 || !strings.Contains(errs, "org_9") || strings.Contains(out, "accounts") {
		t.Errorf("a producer of an unknown tenant: exit %d %s %s", code, out, errs)
	}
}

// TestPublishAsRestrictedProducer runs nats-server with the accounts that
// nats-config printed, and `orgdispatch publish` as org_1's producer (user,
// password, ORGDISPATCH_NATS_INBOX_PREFIX): its job for org_1 is accepted,
// one for org_2 is refused.
func TestPublishAsRestrictedProducer(t *testing.T) {
	tf := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(tf, []byte("tenants:\n  - {id: org_1, client_id: c1, client_secret: s1}\n  - {id: org_2, client_id: c2, client_secret: s2}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	onlyEnv(t, map[string]string{"ORGDISPATCH_TENANTS_FILE": tf})
	code, frag, errs := runCLI(t, "nats-config")
	if code != 0 {
		t.Fatalf("nats-config: %d %s", code, errs)
	}
	t.Setenv("NATS_PASSWORD_ORGDISPATCH", "svc-pw-1")
	t.Setenv("NATS_PASSWORD_ORG_1", "org1-pw-2")
	t.Setenv("NATS_PASSWORD_ORG_2", "org2-pw-3")
	dir := t.TempDir()
	path := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(path, []byte("listen: 127.0.0.1:-1\njetstream { store_dir: \""+dir+"\" }\n"+frag), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	hostPort := strings.TrimPrefix(srv.ClientURL(), "nats://")

	// The service user provisions, as serve or api would.
	nc, err := nats.Connect("nats://"+hostPort, nats.UserInfo("orgdispatch", "svc-pw-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	names := dispatcher.MustNames("")
	if err := dispatcher.Provision(t.Context(), js, names, dispatcher.StreamConfig{}, []tenants.Tenant{{ID: "org_1", Concurrency: 1}, {ID: "org_2", Concurrency: 1}}); err != nil {
		t.Fatal(err)
	}

	t.Setenv("ORGDISPATCH_NATS_URL", "nats://org_1:org1-pw-2@"+hostPort)
	t.Setenv("ORGDISPATCH_NATS_INBOX_PREFIX", dispatcher.InboxPrefix("org_1"))
	code, out, errs := runCLI(t, "publish", "--tenant", "org_1", "--op", "campaign.start", "--id", "j1", "--params", `{"campaign_id":"c"}`)
	if code != 0 || !strings.Contains(out, "accepted org_1/j1") {
		t.Errorf("org_1's producer publishes for org_1: exit %d %s %s", code, out, errs)
	}
	code, out, errs = runCLI(t, "publish", "--tenant", "org_2", "--op", "campaign.start", "--id", "j2", "--params", `{"campaign_id":"c"}`, "--timeout", "2s")
	if code == 0 {
		t.Errorf("org_1's producer published for org_2: %s", out)
	}
	if strings.Contains(out+errs, "org1-pw-2") {
		t.Error("the output shows the password")
	}
	if n, err := dispatcher.QueuedJobs(t.Context(), js, names); err != nil || n != 1 {
		t.Errorf("jobs streams: %v, %d jobs, want org_1's one", err, n)
	}
}
