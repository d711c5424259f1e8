package dispatcher

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// Producer is an upstream system that publishes jobs for some tenants
// straight to NATS: a nats-server user allowed to publish to those
// tenants' job subjects and read their outcome events, nothing else.
type Producer struct {
	// Name is the nats-server user name: 1-32 of a-z 0-9 _ -.
	Name string
	// Tenants are the tenant ids it may publish for.
	Tenants []string
}

// NATSAuthConfig describes the nats-server accounts fragment that
// WriteNATSAuth writes.
type NATSAuthConfig struct {
	// Account is the account all orgdispatch users share (default
	// ORGDISPATCH). JetStream is enabled in it.
	Account string
	// ServiceUser is the user of the workers, the API and serve: every
	// subject of the account (default "orgdispatch").
	ServiceUser string
	// Producers each get a user with publish rights on their tenants only.
	Producers []Producer
}

var producerNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// PasswordVar is the environment variable the generated configuration
// reads a user's password from (nats-server resolves $NAME references from
// the environment), e.g. NATS_PASSWORD_CRM_EU for user crm-eu. Passwords
// never appear in the generated file.
func PasswordVar(user string) string {
	return "NATS_PASSWORD_" + strings.ToUpper(strings.NewReplacer("-", "_").Replace(user))
}

// InboxPrefix is the inbox prefix a producer's connection must use
// (nats.CustomInboxPrefix, or the nats CLI's --inbox-prefix): it may
// receive replies (JetStream publish acknowledgements) there only. The
// shared _INBOX.> would let it read the replies to every other user — the
// service user's JetStream API answers included, dead letters and all.
func InboxPrefix(producer string) string { return "_INBOX_" + producer }

// ProducerPermissions are the subjects a producer may publish to and
// subscribe to: its tenants' job subjects; its tenants' records in the job
// status bucket (what Publisher writes as "queued" and Admin reads: KV
// puts, and direct gets by key, which name the key in the subject) and
// the bucket's stream info, which Publisher needs to bind it; the info of
// its tenants' consumers (the backlog and its limit, which Publisher checks
// before publishing); the
// account's JetStream info (usage totals, which orgdispatch publish checks
// first); its own inbox; its tenants' outcome events. Nothing else of the
// JetStream API, no other tenant, no dead letters, no audit records.
func (n Names) ProducerPermissions(p Producer) (publish, subscribe []string) {
	tenants := slices.Clone(p.Tenants)
	slices.Sort(tenants)
	bucket := n.StatusBucket()
	publish = []string{"$JS.API.INFO", "$JS.API.STREAM.INFO.KV_" + bucket}
	for _, t := range slices.Compact(tenants) {
		publish = append(publish, n.TenantJobsFilter(t),
			"$JS.API.CONSUMER.INFO."+n.JobsStream(t)+"."+n.Consumer(t),
			"$JS.API.CONSUMER.INFO."+n.JobsStream(t)+"."+n.PriorityConsumer(t, PriorityUrgent),
			"$JS.API.CONSUMER.INFO."+n.JobsStream(t)+"."+n.PriorityConsumer(t, PriorityBulk),
			"$KV."+bucket+"."+t+".>",
			"$JS.API.DIRECT.GET.KV_"+bucket+".$KV."+bucket+"."+t+".>")
		subscribe = append(subscribe, n.prefix+".events."+t+".>")
	}
	subscribe = append([]string{InboxPrefix(p.Name) + ".>"}, subscribe...)
	return publish, subscribe
}

// validate checks the config against the known tenant ids.
func (c NATSAuthConfig) validate(known []string) error {
	var errs []error
	users := map[string]bool{c.ServiceUser: true}
	if len(c.Producers) == 0 {
		errs = append(errs, errors.New("no producers"))
	}
	for _, p := range c.Producers {
		if !producerNameRE.MatchString(p.Name) {
			errs = append(errs, fmt.Errorf("producer %q: want 1-32 of a-z 0-9 _ - starting with a letter or digit", p.Name))
		} else if users[p.Name] {
			errs = append(errs, fmt.Errorf("producer %q: the name is used twice (or is the service user)", p.Name))
		}
		users[p.Name] = true
		if len(p.Tenants) == 0 {
			errs = append(errs, fmt.Errorf("producer %q: no tenants", p.Name))
		}
		for _, t := range p.Tenants {
			if !slices.Contains(known, t) {
				errs = append(errs, fmt.Errorf("producer %q: tenant %q is not in the tenants file", p.Name, t))
			}
		}
	}
	return errors.Join(errs...)
}

// WriteNATSAuth writes a nats-server configuration fragment (an accounts
// block, for the server's config file or an include) giving the service
// user every subject of the account and each producer only its tenants'
// jobs (publish) and events (subscribe). known lists the tenant ids of the
// tenants file; every producer tenant must be one of them.
func WriteNATSAuth(w io.Writer, names Names, cfg NATSAuthConfig, known []string) error {
	if cfg.Account == "" {
		cfg.Account = "ORGDISPATCH"
	}
	if cfg.ServiceUser == "" {
		cfg.ServiceUser = "orgdispatch"
	}
	if err := cfg.validate(known); err != nil {
		return fmt.Errorf("dispatcher: nats config: %w", err)
	}
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	list := func(ss []string) string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = q(s)
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# nats-server accounts for orgdispatch (prefix %s), written by `orgdispatch nats-config`.\n", names.Prefix())
	fmt.Fprintf(&b, "# Passwords come from the environment of nats-server (never this file):\n")
	fmt.Fprintf(&b, "#   %s for %s", PasswordVar(cfg.ServiceUser), cfg.ServiceUser)
	for _, p := range cfg.Producers {
		fmt.Fprintf(&b, ", %s for %s", PasswordVar(p.Name), p.Name)
	}
	fmt.Fprintf(&b, ".\n# A producer connects with its inbox prefix (nats.CustomInboxPrefix(%q), nats --inbox-prefix).\n", InboxPrefix("<name>"))
	fmt.Fprintf(&b, "accounts {\n  %s {\n    jetstream: enabled\n    users: [\n", cfg.Account)
	fmt.Fprintf(&b, "      # workers, API, serve: every subject of the account\n")
	fmt.Fprintf(&b, "      { user: %s, password: $%s }\n", q(cfg.ServiceUser), PasswordVar(cfg.ServiceUser))
	for _, p := range cfg.Producers {
		pub, sub := names.ProducerPermissions(p)
		tenants := slices.Clone(p.Tenants)
		slices.Sort(tenants)
		fmt.Fprintf(&b, "      # producer %s: tenants %s\n", p.Name, strings.Join(slices.Compact(tenants), ", "))
		fmt.Fprintf(&b, "      { user: %s, password: $%s, permissions: {\n", q(p.Name), PasswordVar(p.Name))
		fmt.Fprintf(&b, "          publish: { allow: %s }\n", list(pub))
		fmt.Fprintf(&b, "          subscribe: { allow: %s }\n", list(sub))
		fmt.Fprintf(&b, "      } }\n")
	}
	fmt.Fprintf(&b, "    ]\n  }\n}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
