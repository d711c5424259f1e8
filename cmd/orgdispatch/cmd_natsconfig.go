package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/config"
	"github.com/orgdispatch/orgdispatch/tenants"
)

func init() {
	register(command{
		name:    "nats-config",
		summary: "print nats-server accounts: producers that may publish only for their own tenants",
		run:     runNATSConfig,
	})
}

const natsConfigHelp = `Usage: orgdispatch nats-config [--producer NAME=TENANT[,TENANT...]]... [--account A] [--service-user U]

Prints a nats-server configuration fragment (an accounts block: put it in
the server's config file or 'include' it) for the tenants of
ORGDISPATCH_TENANTS_FILE, with the subject prefix of ORGDISPATCH_PREFIX:

  - the service user (default orgdispatch), for the workers, the API and
    serve: every subject of the account;
  - one user per producer, allowed to publish jobs only to its tenants'
    subjects (<prefix>.jobs.<tenant>.>), to read and write only its tenants'
    job status records, and to subscribe only to its own inbox
    (_INBOX_<name>.>) and its tenants' events. It cannot publish for
    another tenant, read another tenant's events, dead letters, audit
    records or job status, or use the rest of the JetStream API.

Without --producer, every tenant gets a producer of its own, named after
the tenant id in lower case. Each --producer names one upstream system and
the tenants it publishes for.

Passwords are not in the output: nats-server reads them from its
environment (NATS_PASSWORD_<USER>, e.g. NATS_PASSWORD_CRM_EU). A producer
connects with user and password and its inbox prefix:
nats.CustomInboxPrefix("_INBOX_<name>") in Go, --inbox-prefix with the nats
CLI. The client secrets in the tenants file are not read.

Flags:
`

// producerFlags collects --producer NAME=T1,T2.
type producerFlags []dispatcher.Producer

func (p *producerFlags) String() string { return "" }

func (p *producerFlags) Set(v string) error {
	name, list, ok := strings.Cut(v, "=")
	if !ok || name == "" || list == "" {
		return fmt.Errorf("want NAME=TENANT[,TENANT...], got %q", v)
	}
	*p = append(*p, dispatcher.Producer{Name: name, Tenants: strings.Split(list, ",")})
	return nil
}

func runNATSConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("nats-config", natsConfigHelp, stderr)
	var producers producerFlags
	fs.Var(&producers, "producer", "NAME=TENANT[,TENANT...]: a producer and the tenants it publishes for (repeatable)")
	account := fs.String("account", "ORGDISPATCH", "the nats-server account of all orgdispatch users")
	service := fs.String("service-user", "orgdispatch", "the user of the workers, the API and serve")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(cfg.TenantsFile)
	if err != nil {
		return fmt.Errorf("tenants: %w", err)
	}
	// Only the tenant ids are needed: secrets are neither read nor required.
	noSecret := func(string) (string, bool) { return "unused", true }
	noFile := func(string) ([]byte, error) { return []byte("unused"), nil }
	f, err := tenants.Parse(data, noSecret, noFile)
	if err != nil {
		return fmt.Errorf("tenants: %s: %w", cfg.TenantsFile, err)
	}
	ids := make([]string, len(f.Tenants))
	for i, t := range f.Tenants {
		ids[i] = t.ID
	}
	if len(producers) == 0 {
		for _, id := range ids {
			producers = append(producers, dispatcher.Producer{Name: strings.ToLower(id), Tenants: []string{id}})
		}
	}
	return dispatcher.WriteNATSAuth(stdout, cfg.Names(), dispatcher.NATSAuthConfig{
		Account: *account, ServiceUser: *service, Producers: producers,
	}, ids)
}
