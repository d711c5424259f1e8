package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
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
